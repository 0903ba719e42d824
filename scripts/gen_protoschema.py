"""Generate src/podnet/apiserver/protoschema.json from a kubectl binary (dev-time only).

The Kubernetes protobuf wire schema ships inside every client-go binary twice over:

1. gogo-protobuf registers each `generated.proto` as a gzipped FileDescriptorProto
   (`k8s.io/api/core/v1/generated.proto`, ...). Those give message names, field numbers,
   types, labels, map entries, and the gogoproto options; `(gogoproto.nullable) = false`
   (extension 65001) marks a Go value field, its absence a Go pointer.
2. Go's reflection data keeps every struct field's name and tag
   (`json:"replicas,omitempty" protobuf:"varint,1,opt,name=replicas"`) plus the array of
   fields per struct. Those give what the descriptors lack: `omitempty`, and
   `json:",inline"` (an embedded struct whose fields Go's JSON flattens into the parent).

The script finds both with a hand-written wire reader and a scan of `.rodata` (pure
Python, no protobuf package), matches each Go struct to its message by the set of
(field number, name) pairs, and writes a compact JSON file:

    {"source": ..., "slices": [message, ...],
     "messages": {"k8s.io.api.core.v1.ConfigMap": [[number, name, kind, ref, flags], ...]}}

kind: s string, y bytes, b bool, i int32/int64/enum, u uint32/uint64, z sint32/sint64,
d double, f float, x fixed/sfixed 64, w fixed/sfixed 32, m message (ref = its full name),
M map (ref = [key kind, value kind, value message or ""]).
name: the Go JSON name where the struct tag has one, else the proto name.
flags: 1 repeated, 2 Go pointer, 4 JSON inline, 8 no `omitempty` (Go always writes it),
16 Go struct found (so 8 is meaningful).
"slices": messages that are Go slice types (`type ExtraValue []string`): JSON arrays.

Regenerate (about a second):

    .venv/bin/python scripts/gen_protoschema.py \\
        /usr/lib/google-cloud-sdk/bin/kubectl.1.32 src/podnet/apiserver/protoschema.json
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GZIP_MAGIC = b"\x1f\x8b\x08\x00\x00\x00\x00\x00"
PACKAGE_PREFIX = "k8s.io."

# FieldDescriptorProto.Type -> our kind letter.
TYPE_KIND = {
    1: "d", 2: "f", 3: "i", 4: "u", 5: "i", 6: "x", 7: "w", 8: "b", 9: "s", 11: "m",
    12: "y", 13: "u", 14: "i", 15: "w", 16: "x", 17: "z", 18: "z",
}
REPEATED, POINTER, INLINE, ALWAYS, KNOWN = 1, 2, 4, 8, 16
GOGO_NULLABLE = 65001


# ------------------------------------------------------------------------- wire reader


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        wtype = key & 7
        value: int | bytes
        if wtype == 0:
            value, pos = varint(buf, pos)
        elif wtype == 2:
            size, pos = varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wtype == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wtype == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wtype}")
        yield key >> 3, value


def text(v: int | bytes) -> str:
    assert isinstance(v, bytes)
    return v.decode()


# ------------------------------------------------------------------------- descriptors


def file_descriptors(data: bytes) -> dict[str, bytes]:
    """Every gzip stream in the binary that decompresses to a FileDescriptorProto."""
    out: dict[str, bytes] = {}
    for m in re.finditer(re.escape(GZIP_MAGIC), data):
        d = zlib.decompressobj(31)
        try:
            raw = d.decompress(data[m.start() : m.start() + 4_000_000])
        except zlib.error:
            continue
        if not d.eof or raw[:1] != b"\x0a":
            continue
        try:
            name = next(text(v) for n, v in fields(raw) if n == 1)
        except (ValueError, IndexError, StopIteration, UnicodeDecodeError, AssertionError):
            continue
        if name.endswith(".proto"):
            out[name] = raw
    return out


class Field:
    def __init__(self, raw: bytes) -> None:
        self.name = ""
        self.number = self.label = self.type = 0
        self.type_name = ""
        self.nullable = True
        for n, v in fields(raw):
            if n == 1:
                self.name = text(v)
            elif n == 3 and isinstance(v, int):
                self.number = v
            elif n == 4 and isinstance(v, int):
                self.label = v
            elif n == 5 and isinstance(v, int):
                self.type = v
            elif n == 6:
                self.type_name = text(v).lstrip(".")
            elif n == 8 and isinstance(v, bytes):  # FieldOptions
                for on, ov in fields(v):
                    if on == GOGO_NULLABLE and ov == 0:
                        self.nullable = False


class Message:
    def __init__(self, full: str, raw: bytes, out: dict[str, Message]) -> None:
        self.full = full
        self.fields: list[Field] = []
        self.map_entry = False
        for n, v in fields(raw):
            if n == 2 and isinstance(v, bytes):
                self.fields.append(Field(v))
            elif n == 3 and isinstance(v, bytes):
                nested = next(text(x) for k, x in fields(v) if k == 1)
                Message(f"{full}.{nested}", v, out)
            elif n == 7 and isinstance(v, bytes):
                self.map_entry = any(k == 7 and x == 1 for k, x in fields(v))
        out[full] = self


def messages(fds: dict[str, bytes]) -> dict[str, Message]:
    out: dict[str, Message] = {}
    for raw in fds.values():
        package = next((text(v) for n, v in fields(raw) if n == 2), "")
        if not package.startswith(PACKAGE_PREFIX):
            continue
        for n, v in fields(raw):
            if n == 4 and isinstance(v, bytes):
                name = next(text(x) for k, x in fields(v) if k == 1)
                Message(f"{package}.{name}", v, out)
    return out


# ------------------------------------------------------------------------- Go reflection

GoField = tuple[str, str]  # (Go field name, struct tag)
_IDENT = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*\Z")


def rodata(data: bytes) -> tuple[int, int, int]:
    """(vaddr, file offset, size) of the ELF .rodata section."""
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    secs = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = secs[shstrndx][4]
    for name, _, _, addr, off, size in secs:
        if data[strtab + name : data.index(b"\0", strtab + name)] == b".rodata":
            return addr, off, size
    raise SystemExit("no .rodata section")


def go_name(data: bytes, pos: int) -> GoField:
    """An `abi.Name` at file offset pos: flags (2 = has tag), varint len, name, [tag]."""
    flags = data[pos]
    size, p = varint(data, pos + 1)
    name = data[p : p + size].decode("utf-8", "replace")
    tag = ""
    if flags & 2:
        tag_size, q = varint(data, p + size)
        tag = data[q : q + tag_size].decode("utf-8", "replace")
    return name, tag


def go_structs(data: bytes) -> dict[str, list[list[GoField]]]:
    """Go struct type name ("v1.ConfigMap") -> field lists of the structs of that name.

    Layout (Go 1.2x, static non-PIE binary, so pointers are plain virtual addresses):
    a struct's fields are an array of {name *abi.Name, typ *abi.Type, offset uintptr};
    the `abi.StructType` holding the slice header {ptr, len, cap} of that array starts
    56 bytes before the header (48-byte abi.Type, then PkgPath), and abi.Type.Str
    (int32 at +40) is the offset of the type's name from the start of .rodata.
    """
    vaddr, off, size = rodata(data)
    names: set[int] = set()
    for m in re.finditer(rb'json:"', data[off : off + size]):
        p = off + m.start()
        for q in (p - 1, p - 2):  # the tag length is a 1- or 2-byte varint
            if varint(data, q)[1] != p:
                continue
            for name_len in range(1, 100):
                s = q - name_len - 2
                if data[s + 1] == name_len and data[s] & 2 and not data[s] & 0xF0 and (
                        _IDENT.match(data[s + 2 : q])):
                    names.add(s - off + vaddr)
                    break
    words = memoryview(data)[off : off + size // 8 * 8].cast("Q")
    # First fields: a record pointing at a tagged name, with field offset 0.
    starts = {vaddr + i * 8 for i, w in enumerate(words) if w in names and words[i + 2] == 0}
    out: dict[str, list[list[GoField]]] = {}
    for i, w in enumerate(words):
        if w not in starts or words[i + 1] != words[i + 2] or not 0 < words[i + 1] < 500:
            continue
        header = off + i * 8
        str_off = struct.unpack_from("<i", data, header - 56 + 40)[0]
        if not 0 <= str_off < size:
            continue
        type_name = go_name(data, off + str_off)[0].lstrip("*")
        first = (w - vaddr) // 8
        fields_: list[GoField] = []
        for k in range(words[i + 1]):
            name_addr = words[first + 3 * k]
            if not vaddr <= name_addr < vaddr + size:
                break
            fields_.append(go_name(data, name_addr - vaddr + off))
        else:
            out.setdefault(type_name, []).append(fields_)
    return out


_TAG = re.compile(r'(\w+):"([^"]*)"')


def pb_info(tag: str) -> tuple[int, str | None, str] | None:
    """(number, proto name or None, json tag) of a struct tag with a protobuf part."""
    tags = dict(_TAG.findall(tag))
    if "protobuf" not in tags:
        return None
    parts = tags["protobuf"].split(",")
    name = next((p[5:] for p in parts if p.startswith("name=")), None)
    return int(parts[1]), name, tags.get("json", "")


def match_structs(msgs: dict[str, Message], structs: dict[str, list[list[GoField]]]
                  ) -> dict[str, dict[int, str]]:
    """message -> {field number: json tag}, from the Go struct of the same name.

    Go type names carry only the last package element ("v1beta1.Deployment" is apps or
    extensions), so a struct must also have exactly the message's field numbers and
    names; where two structs fit one message they must agree on every tag.
    """
    out: dict[str, dict[int, str]] = {}
    for full, msg in msgs.items():
        parts = full.split(".")
        go_type = f"{parts[-2]}.{parts[-1]}"
        names = {f.number: f.name for f in msg.fields}
        fits: list[dict[int, str]] = []
        for candidate in structs.get(go_type, []):
            info = [x for x in (pb_info(tag) for _, tag in candidate) if x is not None]
            if len(info) == len(names) and all(
                    n in names and nm in (None, names[n]) for n, nm, _ in info):
                fits.append({n: j for n, _, j in info})
        if fits and all(f == fits[0] for f in fits):
            out[full] = fits[0]
    return out


# ------------------------------------------------------------------------- output


def kind_of(f: Field, msgs: dict[str, Message]) -> tuple[str, Any]:
    if f.type == 11:
        target = msgs.get(f.type_name)
        if target is not None and target.map_entry:
            key, value = sorted(target.fields, key=lambda x: x.number)
            return "M", [TYPE_KIND[key.type], TYPE_KIND[value.type],
                         value.type_name if value.type == 11 else ""]
        return "m", f.type_name
    return TYPE_KIND[f.type], ""


def build(binary: Path) -> dict[str, Any]:
    data = binary.read_bytes()
    msgs = messages(file_descriptors(data))
    tags = match_structs(msgs, go_structs(data))
    out: dict[str, list[list[Any]]] = {}
    slices: list[str] = []
    for full in sorted(msgs):
        msg = msgs[full]
        if msg.map_entry:
            continue
        known = tags.get(full)
        if known is None and [(f.number, f.name, f.label) for f in msg.fields] == [
                (1, "items", 3)]:
            slices.append(full)  # no struct: a named slice type such as ExtraValue
        rows: list[list[Any]] = []
        for f in sorted(msg.fields, key=lambda x: x.number):
            kind, ref = kind_of(f, msgs)
            flags = 0
            if f.label == 3 and kind != "M":
                flags |= REPEATED
            if f.nullable and f.label != 3 and kind != "M":
                flags |= POINTER
            if known is not None and f.number in known:
                flags |= KNOWN
                json_tag = known[f.number].split(",")
                if "inline" in json_tag[1:]:
                    flags |= INLINE
                if "omitempty" not in json_tag[1:]:
                    flags |= ALWAYS
            name = f.name
            if known is not None and f.number in known:
                # The proto name is not always the JSON one (BoundObjectReference "uID").
                json_name = known[f.number].split(",")[0]
                if json_name and json_name != "-":
                    name = json_name
            rows.append([f.number, name, kind, ref, flags])
        out[full] = rows
    version = subprocess.run([str(binary), "version", "--client"], capture_output=True,
                             text=True, check=False).stdout.splitlines()[:1]
    return {"source": f"{binary.name} {' '.join(version)}".strip(), "slices": slices,
            "messages": out}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    schema = build(Path(argv[1]))
    Path(argv[2]).write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True) + "\n")
    msgs = schema["messages"]
    known = sum(1 for rows in msgs.values() if rows and all(r[4] & KNOWN for r in rows))
    print(f"{len(msgs)} messages ({known} matched to Go structs), "
          f"{len(schema['slices'])} slice types -> {argv[2]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
