#!/usr/bin/env python3
"""Writes the gobgp_reply seeds: GoBGP 3.10 replies (gobgp.proto field numbers) as the
harness reads them, a kind byte first (0 ListPeerResponse, 1 WatchEventResponse,
2 GetBgpResponse, 3 a failure status). Run from this directory: python3 gobgp_reply.py"""


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def msg(*fields):
    return b"".join(field(n, v) for n, v in fields)


def peer(address, session, description="cellnet:default/cell1-cell2", password="", families=((1, 1),)):
    return msg(
        (2, msg((1, password), (2, description), (3, 65011), (4, address), (5, 65012), (7, 2))),
        (3, msg((1, 1), (2, 255))),
        (5, msg((5, address), (6, 65012), (13, session), (15, 0))),
        (6, msg((1, msg((1, 120), (2, 9), (3, 3))))),
        (7, msg((1, "127.0.0.11"), (6, 1790))),
        *((10, msg((2, msg((1, msg((1, afi), (2, safi))), (2, 1))))) for afi, safi in families),
    )


seeds = {
    "list_peer_established": b"\x00" + msg((1, peer("127.0.0.12", 6, password="s3cret"))),
    "list_peer_ipv6_evpn": b"\x00"
    + msg((1, peer("2001:db8::2", 3, description="hand-made", families=((2, 1), (25, 70), (1, 133))))),
    "watch_state": b"\x01" + msg((2, msg((1, 3), (2, peer("127.0.0.12", 1))))),
    "watch_end_of_init": b"\x01" + msg((2, msg((1, 2)))),
    "get_bgp": b"\x02" + msg((1, msg((1, 65011), (2, "127.0.0.11"), (3, 1790), (4, "127.0.0.11")))),
    "status_unknown": b"\x03\x02can't overwrite the existing peer",
}
for name, data in seeds.items():
    with open(f"gobgp_reply/{name}", "wb") as f:
        f.write(data)
