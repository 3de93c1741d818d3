#!/usr/bin/env python3
"""A forensic session against a Custos node with the Python standard library only.

Usage: forensic_session.py RPC_URL TOKEN CLIENT

Queries the client's messages committed in the last hour, fetches each payload and checks
its SHA-256 against the envelope, fetches each inclusion proof and verifies it (RFC 9162)
against the root of the checkpoint note it comes with. Exits non-zero on any failure.
"""

import base64
import hashlib
import json
import sys
import time
import urllib.request


def call(url, token, method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    request = urllib.request.Request(url, data=body.encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Custos " + token)
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.load(response)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(leaf_hash, index, size, path):
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to."""
    if index >= size:
        raise ValueError("index beyond tree size")
    fn, sn = index, size - 1
    r = leaf_hash
    for p in path:
        if sn == 0:
            raise ValueError("proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("proof too short")
    return r


def checkpoint_root(note):
    """Origin, size and root of a C2SP checkpoint note's text."""
    origin, size, root = note.split("\n")[:3]
    return origin, int(size), base64.b64decode(root)


def main():
    url, token, client = sys.argv[1:4]
    now_ms = int(time.time() * 1000)
    page = call(url, token, "custos_query", [{
        "client": client,
        "committed_from_ms": now_ms - 3_600_000,
        "committed_to_ms": now_ms + 60_000,
        "limit": 50,
    }])
    messages = page["messages"]
    if not messages:
        raise RuntimeError("the query returned no messages")
    for m in messages:
        assert m["message"]["client"] == client, m
        payload = call(url, token, "custos_getPayload", [{"leaf_hash": m["leaf_hash"]}])
        data = base64.b64decode(payload["payload"])
        digest = hashlib.sha256(data).hexdigest()
        assert digest == payload["sha256"] == m["message"]["payload"]["sha256"], (digest, m)
        leaf = base64.b64decode(m["envelope"])
        leaf_hash = hashlib.sha256(b"\x00" + leaf).digest()
        assert leaf_hash.hex() == m["leaf_hash"], m
        proof = call(url, None, "custos_getInclusionProof", [m["leaf_hash"]])
        origin, size, root = checkpoint_root(proof["checkpoint"]["note"])
        assert size == proof["tree_size"] and root.hex() == proof["root"], proof
        path = [bytes.fromhex(h) for h in proof["path"]]
        computed = root_from_inclusion(leaf_hash, proof["leaf_index"], size, path)
        assert computed == root, f"leaf {m['leaf_index']}: proof does not lead to the root"
        # A proof must not verify another leaf.
        wrong = hashlib.sha256(b"\x00" + leaf + b"x").digest()
        assert root_from_inclusion(wrong, proof["leaf_index"], size, path) != root
    print(json.dumps({"verified": len(messages), "origin": origin}))


if __name__ == "__main__":
    main()
