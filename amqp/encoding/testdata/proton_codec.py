#!/usr/bin/python3
"""Differential peer for amqp/encoding tests: Qpid Proton's codec behind a line protocol.

Each stdin line is a JSON request {"hex": <our encoding>, "tree": <canonical tree>}; each stdout
line answers it with
  {"tree":  Proton's decoding of "hex" as a canonical tree,
   "used":  bytes Proton consumed,
   "reenc": Proton's re-encoding of what it decoded (hex),
   "built": Proton's encoding of "tree" built with the put_* API (hex),
   "err":   a message if any step failed}.
Canonical trees (shared with proton_test.go): ["null"], ["bool", b], [<int type>, "<decimal>"],
["float"|"double"|"decimal32"|"decimal64"|"decimal128"|"uuid"|"binary"|"string"|"symbol", "<hex>"],
["char", "<code point>"], ["timestamp", "<ms>"], ["list", [..]], ["map", [k, v, ..]],
["array", <descriptor tree or null>, "<element type>", [..]], ["described", <descriptor>, <value>].
One process serves a whole test; it exits at EOF.
"""
import json
import struct
import sys
import uuid

from proton import Data

NAMES = {
    Data.NULL: "null", Data.BOOL: "bool", Data.UBYTE: "ubyte", Data.BYTE: "byte", Data.USHORT: "ushort",
    Data.SHORT: "short", Data.UINT: "uint", Data.INT: "int", Data.CHAR: "char", Data.ULONG: "ulong",
    Data.LONG: "long", Data.TIMESTAMP: "timestamp", Data.FLOAT: "float", Data.DOUBLE: "double",
    Data.DECIMAL32: "decimal32", Data.DECIMAL64: "decimal64", Data.DECIMAL128: "decimal128",
    Data.UUID: "uuid", Data.BINARY: "binary", Data.STRING: "string", Data.SYMBOL: "symbol",
    Data.DESCRIBED: "described", Data.ARRAY: "array", Data.LIST: "list", Data.MAP: "map",
}
TYPES = {v: k for k, v in NAMES.items()}
INTS = {"ubyte", "byte", "ushort", "short", "uint", "int", "ulong", "long"}


def walk(d):
    """Canonical tree of the node d is positioned on."""
    t = d.type()
    n = NAMES[t]
    if n == "null":
        return ["null"]
    if n == "bool":
        return ["bool", bool(d.get_bool())]
    if n in INTS:
        return [n, str(int(getattr(d, "get_" + n)()))]
    if n == "float":
        return [n, struct.pack(">f", d.get_float()).hex()]
    if n == "double":
        return [n, struct.pack(">d", d.get_double()).hex()]
    if n == "decimal32":
        return [n, "%08x" % int(d.get_decimal32())]
    if n == "decimal64":
        return [n, "%016x" % int(d.get_decimal64())]
    if n == "decimal128":
        return [n, bytes(d.get_decimal128()).hex()]
    if n == "char":
        return [n, str(ord(d.get_char()))]
    if n == "timestamp":
        return [n, str(int(d.get_timestamp()))]
    if n == "uuid":
        return [n, d.get_uuid().bytes.hex()]
    if n == "binary":
        return [n, bytes(d.get_binary()).hex()]
    if n == "string":
        return [n, d.get_string().encode("utf-8").hex()]
    if n == "symbol":
        return [n, str(d.get_symbol()).encode("ascii").hex()]
    if n in ("list", "map"):
        count = d.get_list() if n == "list" else d.get_map()
        d.enter()
        items = []
        for _ in range(count):
            d.next()
            items.append(walk(d))
        d.exit()
        return [n, items]
    if n == "array":
        count, described, et = d.get_array()
        d.enter()
        desc = None
        if described:
            d.next()
            desc = walk(d)
        items = []
        for _ in range(count):
            d.next()
            items.append(walk(d))
        d.exit()
        return [n, desc, NAMES[et], items]
    if n == "described":
        d.enter()
        d.next()
        desc = walk(d)
        d.next()
        val = walk(d)
        d.exit()
        return [n, desc, val]
    raise ValueError("unknown proton type %r" % t)


def build(d, c):
    """Put the canonical tree c into d."""
    n = c[0]
    if n == "null":
        d.put_null()
    elif n == "bool":
        d.put_bool(c[1])
    elif n in INTS:
        getattr(d, "put_" + n)(int(c[1]))
    elif n == "float":
        d.put_float(struct.unpack(">f", bytes.fromhex(c[1]))[0])
    elif n == "double":
        d.put_double(struct.unpack(">d", bytes.fromhex(c[1]))[0])
    elif n == "decimal32":
        d.put_decimal32(int(c[1], 16))
    elif n == "decimal64":
        d.put_decimal64(int(c[1], 16))
    elif n == "decimal128":
        d.put_decimal128(bytes.fromhex(c[1]))
    elif n == "char":
        d.put_char(chr(int(c[1])))
    elif n == "timestamp":
        d.put_timestamp(int(c[1]))
    elif n == "uuid":
        d.put_uuid(uuid.UUID(bytes=bytes.fromhex(c[1])))
    elif n == "binary":
        d.put_binary(bytes.fromhex(c[1]))
    elif n == "string":
        d.put_string(bytes.fromhex(c[1]).decode("utf-8"))
    elif n == "symbol":
        d.put_symbol(bytes.fromhex(c[1]).decode("ascii"))
    elif n in ("list", "map"):
        d.put_list() if n == "list" else d.put_map()
        d.enter()
        for x in c[1]:
            build(d, x)
        d.exit()
    elif n == "array":
        d.put_array(c[1] is not None, TYPES[c[2]])
        d.enter()
        if c[1] is not None:
            build(d, c[1])
        for x in c[3]:
            build(d, x)
        d.exit()
    elif n == "described":
        d.put_described()
        d.enter()
        build(d, c[1])
        build(d, c[2])
        d.exit()
    else:
        raise ValueError("unknown canonical type %r" % n)


def serve(req):
    out = {}
    try:
        d = Data()
        out["used"] = d.decode(bytes.fromhex(req["hex"]))
        d.rewind()
        d.next()
        out["tree"] = walk(d)
        out["reenc"] = d.encode().hex()
        b = Data()
        build(b, req["tree"])
        out["built"] = b.encode().hex()
    except Exception as e:  # reported to the Go side, which fails the value
        out["err"] = "%s: %s" % (type(e).__name__, e)
    return out


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        sys.stdout.write(json.dumps(serve(json.loads(line))) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
