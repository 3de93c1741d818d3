#!/usr/bin/env python3
"""Independent offline verifier for Custos evidence bundles, version 2.

Written from docs/evidence-bundle.md alone (plus the public C2SP signed-note,
tlog-checkpoint, tlog-cosignature/v1 and tlog-proof specs and RFC 9162 / RFC 8032),
to test whether that document suffices to implement a verifier.

Implements the offline checks of spec section 4:
  4.1 header, 4.2 genesis (borsh re-encoding and SHA-256, trusted hash, validity),
  4.3 checkpoints (signed note, cosignature/v1, quorum, strict cosigner rules, forks),
  4.4 consistency proofs (RFC 9162 2.1.4.2), 4.5 blocks (borsh header/certificate,
  BLAKE3 block id, precommit signatures, parent), 4.6 entries (envelope borsh,
  membership replay, Ed25519, tlog-proof, block inclusion, payload digest),
  4.7 sequences, 4.8 anchors (offline steps 26-27), 4.9 coverage.
Skips: 4.8 step 28 (needs an EVM endpoint); MAX_ENVELOPE_BYTES, per-field string/list
length bounds and the ranges of uninterpreted one-byte enums (none is in the spec);
genesis parameter ranges. The 1 GiB limit is checked as the file size.
Ed25519 verification uses `cryptography` (OpenSSL), which rejects non-canonical S but,
unlike ed25519-dalek verify_strict, does not itself reject small-order keys; we reject
those explicitly against the known list of small-order encodings.

Usage: verify_bundle.py BUNDLE [--genesis-hash HEX] [--require-anchored] [--deadline-s N]
       verify_bundle.py --self-test BUNDLE
Exit 0: passed; 1: a check failed; 2: unusable input.
"""
import base64, copy, hashlib, json, os, struct, sys

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MEMBERS = {"format", "version", "created_at_ms", "scope", "genesis_hash", "genesis",
           "checkpoints", "blocks", "entries", "consistency", "anchors"}
LIMITS = {"checkpoints": 1024, "blocks": 100_000, "entries": 100_000,
          "consistency": 1024, "anchors": 1024}
ROLES = ["control-center", "warning", "response", "insurer", "client"]
KINDS = ["evidence", "heartbeat", "early-warning", "incident", "insurance", "membership",
         "access-audit", "anchor-receipt", "equivocation", "posture"]
PERMITTED = {  # section 4.6 step 19
    "collector": {"evidence", "heartbeat"},
    "control-center": {"membership", "incident", "early-warning", "posture"},
    "warning": {"early-warning", "posture"},
    "response": {"incident"},
    "insurer": {"insurance"},
    "client": {"incident", "posture", "insurance"},
    "validator": {"access-audit", "anchor-receipt", "equivocation"},
}
# Small-order Ed25519 point encodings (canonical ones; verify_strict rejects these keys).
SMALL_ORDER = {bytes.fromhex(h) for h in (
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa")}
EM_DASH = "\u2014 "


class Unusable(Exception):
    """Input that cannot be verified at all (exit 2)."""


class Bad(Exception):
    """A check failed; carries the check name."""
    def __init__(self, check, reason):
        super().__init__(reason)
        self.check, self.reason = check, reason


# ---------------------------------------------------------------- section 2: encodings
def sha256(*parts):
    return hashlib.sha256(b"".join(parts)).digest()


def b64(text, check="base64"):
    """Strict, canonical, padded RFC 4648 base64."""
    try:
        raw = base64.b64decode(text, validate=True)
    except Exception as e:
        raise Bad(check, f"invalid base64: {e}")
    if base64.b64encode(raw).decode() != text:
        raise Bad(check, "non-canonical base64")
    return raw


def unhex(text, n=None, check="format"):
    if not isinstance(text, str) or text != text.lower() or (n and len(text) != 2 * n):
        raise Bad(check, f"not {n}-byte lower-case hex: {text!r}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise Bad(check, f"not hex: {text!r}")


def tag(s):
    return bstr(s)


def bstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<I", len(b)) + b


def ed25519_ok(key, msg, sig):
    if len(key) != 32 or len(sig) != 64 or key in SMALL_ORDER:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


def key_id(public_key):
    """Section 3.3: first 8 bytes of SHA-256(borsh("custos/v1/key-id") || key)."""
    return sha256(tag("custos/v1/key-id"), public_key)[:8]


class Reader:
    """Borsh decoder (section 2)."""
    def __init__(self, data, check):
        self.d, self.i, self.check = data, 0, check

    def take(self, n):
        if self.i + n > len(self.d):
            raise Bad(self.check, "truncated")
        out = self.d[self.i:self.i + n]
        self.i += n
        return out

    def u8(self): return self.take(1)[0]
    def u32(self): return struct.unpack("<I", self.take(4))[0]
    def u64(self): return struct.unpack("<Q", self.take(8))[0]
    def bytes_(self): return self.take(self.u32())

    def string(self):
        try:
            return self.bytes_().decode("utf-8")
        except UnicodeDecodeError:
            raise Bad(self.check, "string is not UTF-8")

    def option(self, f):
        flag = self.u8()
        if flag > 1:
            raise Bad(self.check, "bad option flag")
        return f() if flag else None

    def list(self, f):
        return [f() for _ in range(self.u32())]

    def enum(self, variants):
        v = self.u8()
        if v >= len(variants):
            raise Bad(self.check, f"enum variant {v} out of range")
        name, f = variants[v]
        return name, f()

    def end(self):
        if self.i != len(self.d):
            raise Bad(self.check, f"{len(self.d) - self.i} trailing bytes")


# ---------------------------------------------------------------- RFC 9162 hashing
def leaf_hash(data):
    return sha256(b"\x00", data)


def node(left, right):
    return sha256(b"\x01", left, right)


def root_from_inclusion(index, size, leaf, proof):
    """RFC 9162 2.1.3.2; returns the computed root or None."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def consistency_ok(n1, n2, root1, root2, proof):
    """RFC 9162 2.1.4.2."""
    if not 1 <= n1 <= n2:
        return False
    if n1 == n2:
        return not proof and root1 == root2
    if not proof:
        return False
    path = list(proof)
    if n1 & (n1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = n1 - 1, n2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root1 and sr == root2


# ---------------------------------------------------------------- C2SP notes
def note_key_id(name, sig_type, key):
    """C2SP signed-note key id: SHA-256(name || "\\n" || type || key)[:4]."""
    return sha256(name.encode(), b"\n", bytes([sig_type]), key)[:4]


def parse_signed_note(text, check):
    """C2SP signed-note: returns (note text, [(name, signature bytes)])."""
    if not text.endswith("\n") or "\n\n" not in text:
        raise Bad(check, "no blank line before signatures or no final newline")
    cut = text.rindex("\n\n")
    body, sigs = text[:cut + 1], text[cut + 2:]
    lines = []
    for line in sigs[:-1].split("\n") if sigs else []:
        if not line.startswith(EM_DASH):
            raise Bad(check, f"bad signature line {line!r}")
        parts = line[len(EM_DASH):].split(" ")
        if len(parts) != 2 or not parts[0] or "+" in parts[0]:
            raise Bad(check, f"bad signature line {line!r}")
        sig = b64(parts[1], check)
        if len(sig) < 5:
            raise Bad(check, "signature too short")
        lines.append((parts[0], sig))
    if not lines:
        raise Bad(check, "note has no signatures")
    return body, lines


def parse_checkpoint_body(body, check):
    """C2SP tlog-checkpoint: origin, decimal size, base64 root, extension lines."""
    lines = body[:-1].split("\n")
    if len(lines) < 3 or not lines[0]:
        raise Bad(check, "checkpoint has fewer than three lines")
    size = lines[1]
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise Bad(check, f"bad tree size {size!r}")
    root = b64(lines[2], check)
    if len(root) != 32:
        raise Bad(check, "root is not 32 bytes")
    return lines[0], int(size), root


def verify_checkpoint(text, policy):
    """Sections 4.3 steps 6-8; returns (size, root)."""
    body, lines = parse_signed_note(text, "checkpoint-note")
    origin, size, root = parse_checkpoint_body(body, "checkpoint-note")
    seen = set()
    for name, sig in lines:
        v = policy["cosigners"].get(name)
        if v is None or sig[:4] != v["note_key_id"]:
            raise Bad("checkpoint-cosigner-known", f"signature line from unknown {name}")
        if name in seen:
            raise Bad("checkpoint-cosigner-once", f"{name} signed twice")
        seen.add(name)
    if origin != policy["origin"]:
        raise Bad("checkpoint-quorum", f"origin {origin!r} is not {policy['origin']!r}")
    for name, sig in lines:
        if len(sig) != 4 + 8 + 64:
            raise Bad("checkpoint-quorum", f"{name}: not a cosignature/v1 signature")
        t = struct.unpack(">Q", sig[4:12])[0]
        msg = f"cosignature/v1\ntime {t}\n".encode() + body.encode()
        if not ed25519_ok(policy["cosigners"][name]["key"], msg, sig[12:]):
            raise Bad("checkpoint-quorum", f"{name}: cosignature does not verify")
    if len(seen) < policy["threshold"]:
        raise Bad("checkpoint-quorum", f"{len(seen)} of {policy['threshold']} cosigners")
    return size, root


def parse_tlog_proof(text):
    """C2SP tlog-proof@v1: returns (index, [hashes], checkpoint note)."""
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or lines[0] != "c2sp.org/tlog-proof@v1":
        raise Bad("proof-format", "not a c2sp.org/tlog-proof@v1 file")
    i = 1
    if i < len(lines) and lines[i].startswith("extra "):
        b64(lines[i][6:], "proof-format")
        i += 1
    if i >= len(lines) or not lines[i].startswith("index "):
        raise Bad("proof-format", "no index line")
    idx = lines[i][6:]
    if not idx.isdigit() or (idx != "0" and idx.startswith("0")):
        raise Bad("proof-format", f"bad index {idx!r}")
    hashes = [b64(h, "proof-format") for h in lines[i + 1:]]
    if any(len(h) != 32 for h in hashes):
        raise Bad("proof-format", "proof hash is not 32 bytes")
    return int(idx), hashes, note


# ---------------------------------------------------------------- section 3 decoders
def decode_message(env):
    """Section 3.3: tag || borsh(Message) || signature[64]; returns (message, signed, sig)."""
    r = Reader(env, "envelope-decode")
    if r.string() != "custos/v1/message":
        raise Bad("envelope-decode", "wrong domain tag")
    h32, h8 = (lambda: r.take(32)), (lambda: r.take(8))
    money = lambda: {"minor_units": r.u64(), "currency": r.string()}
    action = lambda: r.enum([
        ("detected", lambda: {"level": r.u8(), "aware_at": r.u64()}), ("reported", dict),
        ("level-changed", lambda: {"level": r.u8()}), ("contained", dict),
        ("recovered", dict), ("investigation-report", dict), ("closed", dict)])
    kinds = [
        ("evidence", lambda: {"evidence": r.u8()}),
        ("heartbeat", lambda: {"interval_ms": r.u64()}),
        ("early-warning", dict),
        ("incident", lambda: {"incident_id": r.string(), "action": action(), "note": r.string()}),
        ("insurance", lambda: r.enum([
            ("policy", lambda: {"policy_id": r.string(), "client": r.string(),
                                "starts_at": r.u64(), "ends_at": r.u64()}),
            ("claim-filed", lambda: {"claim_id": r.string(), "policy_id": r.string(),
                                     "incident_id": r.string(), "claimed_loss": money()}),
            ("claim-decided", lambda: {"claim_id": r.string(), "decision": r.u8(),
                                       "paid": money()})])),
        ("membership", lambda: r.enum([
            ("collector-enrolled", lambda: {"key": h32(), "client": r.string(), "name": r.string()}),
            ("collector-revoked", lambda: {"key_id": h8(), "reason": r.string()}),
            ("key-rotated", lambda: {"old": h8(), "new": h32()}),
            ("organisation-added", lambda: {"org": r.string(), "role": r.u8(), "key": h32()})])),
        ("access-audit", lambda: {"reader": r.string(), "reader_key": h8(), "method": r.string(),
                                  "leaf_indexes": r.list(r.u64), "read_at": r.u64()}),
        ("anchor-receipt", lambda: {"chain_id": r.u64(), "tx_hash": h32(), "block_number": r.u64(),
                                    "block_hash": h32(), "block_time_s": r.u64(),
                                    "tree_size": r.u64(), "root": h32()}),
        ("equivocation", lambda: {"validator": h8(), "vote_a": r.bytes_(), "vote_b": r.bytes_()}),
        ("posture", lambda: {"controls": r.list(lambda: (r.u8(), r.u8())), "note": r.string()}),
    ]
    m = {"network": r.string(), "author": h8(), "client": r.string(), "sequence": r.u64(),
         "prev": h32()}
    m["kind"] = r.enum(kinds)
    m.update(format=r.u8(), occurred_at=r.option(r.u64), observed_at=r.u64(),
             severity=r.option(lambda: (r.u8(), r.string(), r.u8())),
             rule_id=r.option(r.string), host=r.option(r.string),
             attack_ids=r.list(r.string), references=r.list(h32),
             parse_error=r.option(r.string),
             payload={"media_type": r.string(), "size_bytes": r.u64(), "sha256": h32()})
    signed_end = r.i
    sig = r.take(64)
    r.end()
    return m, env[:signed_end], sig


def decode_header(raw):
    r = Reader(raw, "block-decode")
    h = {"network": r.string(), "height": r.u64(), "round": r.u32(), "proposer": r.take(8),
         "time": r.u64(), "parent": r.take(32), "body_hash": r.take(32),
         "log_size": r.u64(), "log_root": r.take(32)}
    r.end()
    h["id"] = blake3.blake3(tag("custos/v1/block-header") + raw).digest()
    return h


def decode_certificate(raw):
    r = Reader(raw, "block-decode")
    c = {"height": r.u64(), "round": r.u32(), "block": r.take(32),
         "signatures": r.list(lambda: (r.take(8), r.take(64)))}
    r.end()
    return c


# ---------------------------------------------------------------- section 4 checks
class Verifier:
    def __init__(self, bundle, trusted_hash=None, require_anchored=False, deadline_s=None):
        self.b, self.trusted = bundle, trusted_hash
        self.require_anchored, self.deadline_s = require_anchored, deadline_s
        self.failures, self.skipped = [], ["4.8 step 28 (online anchor checks)",
                                           "MAX_ENVELOPE_BYTES (value not in the spec)",
                                           "field length bounds and one-byte enum ranges",
                                           "genesis parameter ranges"]
        self.genesis_hash = None

    def fail(self, item, check, reason):
        self.failures.append({"item": item, "check": check, "reason": reason})

    def run(self):
        try:
            self.header_4_1()
            self.genesis_4_2()
        except Bad as e:
            self.fail(e.item, e.check, e.reason)
            return self.report([])
        self.checkpoints_4_3()
        self.consistency_4_4()
        self.blocks_4_5()
        self.entries_4_6()
        self.sequences_4_7()
        self.anchors_4_8()
        return self.report(self.coverage_4_9())

    def report(self, entries):
        return {"passed": not self.failures, "genesis_hash": self.genesis_hash,
                "genesis_trusted": self.trusted is not None and not any(
                    f["check"] in ("genesis-trusted", "genesis-hash") for f in self.failures),
                "genesis_compared": self.trusted is not None,
                "failures": self.failures, "skipped": self.skipped, "entries": entries}

    # 4.1 ------------------------------------------------------------------
    def header_4_1(self):
        b = self.b
        def stop(check, reason):
            e = Bad(check, reason); e.item = "bundle"; raise e
        if b.get("format") != "custos-evidence-bundle":
            stop("format", f"format is {b.get('format')!r}")
        if b.get("version") != 2 or type(b.get("version")) is not int:
            stop("version", f"version is {b.get('version')!r}; this verifier reads version 2")
        if set(b) != MEMBERS:
            stop("format", f"members differ: extra {sorted(set(b) - MEMBERS)}, "
                           f"missing {sorted(MEMBERS - set(b))}")
        for k, n in LIMITS.items():
            if not isinstance(b[k], list) or len(b[k]) > n:
                stop("limits", f"{k} is not a list of at most {n}")

    # 4.2 ------------------------------------------------------------------
    def genesis_4_2(self):
        g = self.b["genesis"]
        try:
            digest = sha256(tag("custos/v1/genesis"), encode_genesis(g)).hex()
        except (KeyError, TypeError, ValueError, Bad) as e:
            raise Unusable(f"genesis cannot be re-encoded: {e!r}")
        self.genesis_hash = digest
        def stop(check, reason):
            e = Bad(check, reason); e.item = "genesis"; raise e
        if digest != self.b["genesis_hash"]:
            stop("genesis-hash", f"genesis hashes to {digest}, bundle says {self.b['genesis_hash']}")
        if self.trusted is not None and self.trusted != digest:
            stop("genesis-trusted", f"genesis {digest} is not the trusted {self.trusted}")
        vals = g["validators"]["validators"]
        keys = [v["key"] for v in vals] + [o["key"] for o in g["organisations"]] + \
               [c["key"] for c in g["collectors"]]
        kids = [key_id(bytes.fromhex(k)) for k in keys]
        orgs = [o["id"] for o in g["organisations"]]
        if len(set(keys)) != len(keys) or len(set(kids)) != len(kids):
            stop("genesis-valid", "duplicate keys or key ids")
        # Not in the spec (gaps 6-7, learned from genesis.rs / block.rs):
        if not vals or any(v["power"] == 0 for v in vals) or len(set(orgs)) != len(orgs):
            stop("genesis-valid", "no validators, zero power or duplicate organisation")
        if len(g["cosigners"]) != len(vals):
            stop("genesis-valid", "cosigners do not match validators")
        cosigners = {}
        for v, c in zip(vals, g["cosigners"]):
            key = bytes.fromhex(v["key"])
            kid = note_key_id(v["name"], 4, key)
            vkey = base64.b64encode(b"\x04" + key).decode()
            want = f"{v['name']}+{kid.hex()}+{vkey}"
            if c != want or v["name"] in cosigners:
                stop("genesis-valid", f"cosigner {c!r} is not {want!r}")
            cosigners[v["name"]] = {"key": key, "note_key_id": kid}
        n = len(vals)
        self.policy = {"origin": g["log_origin"], "cosigners": cosigners,
                       "threshold": n - (n - 1) // 3}
        self.validators = {key_id(bytes.fromhex(v["key"])): (bytes.fromhex(v["key"]), v["power"])
                           for v in vals}
        self.members = {}  # key id -> {"key", "role", "client", "revoked"}
        for v in vals:
            self.members[key_id(bytes.fromhex(v["key"]))] = member(v["key"], "validator", v["org"])
        for o in g["organisations"]:
            self.members[key_id(bytes.fromhex(o["key"]))] = member(o["key"], o["role"], o["id"])
        for c in g["collectors"]:
            self.members[key_id(bytes.fromhex(c["key"]))] = member(c["key"], "collector", c["client"])

    # 4.3 ------------------------------------------------------------------
    def checkpoints_4_3(self):
        self.roots = {}  # verified size -> root
        for i, text in enumerate(self.b["checkpoints"]):
            try:
                size, root = verify_checkpoint(text, self.policy)
            except Bad as e:
                self.fail(f"checkpoints[{i}]", e.check, e.reason)
                continue
            if self.roots.get(size, root) != root:
                self.fail(f"checkpoints[{i}]", "checkpoint-fork", f"two roots for size {size}")
            self.roots.setdefault(size, root)

    # 4.4 ------------------------------------------------------------------
    def consistency_4_4(self):
        self.links = {}  # union-find over linked sizes
        for c in self.b["consistency"]:
            n1, n2 = c["old_size"], c["new_size"]
            item = f"consistency {n1} -> {n2}"
            if n1 not in self.roots or n2 not in self.roots:
                self.fail(item, "checkpoint-present", "size is not a verified checkpoint")
                continue
            try:
                proof = [unhex(h, 32, "consistency") for h in c["proof"]]
            except Bad as e:
                self.fail(item, e.check, e.reason)
                continue
            if not consistency_ok(n1, n2, self.roots[n1], self.roots[n2], proof):
                self.fail(item, "consistency", "consistency proof does not verify")
                continue
            self.links[self.find(n1)] = self.find(n2)

    def find(self, n):
        while self.links.get(n, n) != n:
            n = self.links[n]
        return n

    # 4.5 ------------------------------------------------------------------
    def blocks_4_5(self):
        self.blocks, prev_height = {}, 0
        total = sum(p for _, p in self.validators.values())
        for i, blk in enumerate(self.b["blocks"]):
            item = f"blocks[{i}]"
            try:
                h = decode_header(b64(blk["header"]))
                c = decode_certificate(b64(blk["certificate"]))
                parent = blk.get("parent")  # JSON null is the same as absent
                p = decode_header(b64(parent)) if parent is not None else None
            except Bad as e:
                self.fail(item, e.check, e.reason)
                continue
            # Steps 12-15 in order; the first failure ends the block (section 4).
            if h["height"] <= prev_height:
                self.fail(item, "block-order", f"height {h['height']} after {prev_height}")
                continue
            if h["network"] != self.b["genesis"]["network"]:
                self.fail(item, "block-network", f"network {h['network']!r}")
                continue
            reason = self.certificate_reason(h, c, total)
            if reason:
                self.fail(item, "block-certificate", reason)
                continue
            reason = parent_reason(h, p)
            if reason:
                self.fail(item, "block-parent", reason)
                continue
            prev_height = h["height"]  # the last verified block (step 12)
            h["first_leaf"] = p["log_size"] if p else 0
            self.blocks[h["height"]] = h

    def certificate_reason(self, h, c, total):
        if c["height"] != h["height"] or c["block"] != h["id"]:
            return "certificate is not for this header"
        signers, power = set(), 0
        for kid, sig in c["signatures"]:
            if kid not in self.validators or kid in signers:
                return f"signer {kid.hex()} unknown or repeated"
            signers.add(kid)
            key, p = self.validators[kid]
            vote = (bstr(h["network"]) + struct.pack("<QIB", c["height"], c["round"], 1)
                    + b"\x01" + c["block"] + kid)
            if not ed25519_ok(key, tag("custos/v1/vote") + vote, sig):
                return f"precommit of {kid.hex()} does not verify"
            power += p
        if power < 2 * total // 3 + 1:
            return f"signers hold {power} of {total} voting power"
        return None

    # 4.6 ------------------------------------------------------------------
    def entries_4_6(self):
        self.verified, prev = {}, -1
        for e in self.b["entries"]:
            li = e["leaf_index"]
            item = f"entry {li}"
            if li <= prev:
                self.fail(item, "entry-order", f"leaf index {li} after {prev}")
                continue
            prev = li
            errors = []
            try:
                self.entry(e, errors)
            except Bad as x:
                errors.append((x.check, x.reason))
            # Checks are gathered in the order of section 4.6; the first failure ends
            # the entry and is the one reported (section 4).
            if errors:
                self.fail(item, *errors[0])

    def entry(self, e, errors):
        li = e["leaf_index"]
        env = b64(e["envelope"])
        payload = b64(e["payload"]) if "payload" in e else None
        m, signed, sig = decode_message(env)
        lh = leaf_hash(env)
        idx, hashes, note = parse_tlog_proof(e["proof"])
        if idx != li:
            raise Bad("proof-index", f"proof index {idx}")
        who = self.author_reason(m)
        if who:
            raise Bad("author-permitted", who)
        if not ed25519_ok(self.members[m["author"]]["key"], signed, sig):
            errors.append(("envelope-signature", "envelope signature does not verify"))
        try:
            size, root = verify_checkpoint(note, self.policy)
            if root_from_inclusion(li, size, lh, hashes) != root:
                raise Bad("inclusion", "inclusion proof does not lead to the checkpoint root")
            if self.roots.get(size) != root:
                errors.append(("proof-checkpoint", f"checkpoint {size} was not verified"))
        except Bad as x:
            errors.append(("inclusion", x.reason))
            size = None
        blk = self.blocks.get(e["block_height"])
        if blk is None:
            errors.append(("entry-block", f"block {e['block_height']} not verified"))
        elif not blk["first_leaf"] <= li < blk["log_size"]:
            errors.append(("block-range", f"block appended [{blk['first_leaf']}, {blk['log_size']})"))
        else:
            try:
                bp = [unhex(h, 32, "block-inclusion") for h in e["block_proof"]]
                if root_from_inclusion(li, blk["log_size"], lh, bp) != blk["log_root"]:
                    errors.append(("block-inclusion", "block proof does not lead to log_root"))
            except Bad as x:
                errors.append((x.check, x.reason))
        pd = m["payload"]
        if payload is not None and (len(payload) != pd["size_bytes"] or sha256(payload) != pd["sha256"]):
            errors.append(("payload-digest", "payload does not match its descriptor"))
        if not errors:
            conflict = self.apply_membership(m)
            if conflict:
                errors.append(("author-permitted", conflict))
        if errors:
            return
        self.verified[li] = {"m": m, "leaf_hash": lh, "proof_size": size, "block": blk,
                             "payload_checked": payload is not None}

    def author_reason(self, m):
        """Section 4.6 step 19."""
        if m["network"] != self.b["genesis"]["network"]:
            return f"network {m['network']!r}"
        a = self.members.get(m["author"])
        if a is None or a["revoked"]:
            return f"author {m['author'].hex()} unknown or revoked"
        kind, sub = m["kind"]
        if kind not in PERMITTED[a["role"]]:
            return f"{a['role']} may not write {kind}"
        if a["role"] == "collector" and m["client"] != a["client"]:
            return f"collector of {a['client']} writes for {m['client']}"
        if a["role"] == "client":
            if m["client"] != a["client"] or (kind == "insurance" and sub[0] != "claim-filed"):
                return "a client writes only about itself, and only claims"
        return None

    def apply_membership(self, m):
        """Step 24. Conflicts (not in the spec, gap: learned from membership.rs) fail
        author-permitted and leave the entry unverified."""
        kind, change = m["kind"]
        if kind != "membership":
            return None
        name, c = change
        if name == "collector-enrolled":
            return self.add_member(c["key"], "collector", c["client"])
        if name == "collector-revoked":
            old = self.members.get(c["key_id"])
            if old is None or old["role"] != "collector":
                return f"cannot revoke {c['key_id'].hex()}: unknown or not a collector"
            old["revoked"] = True
        elif name == "key-rotated":
            old = self.members.get(c["old"])
            if old is None or old["revoked"]:
                return f"cannot rotate {c['old'].hex()}: unknown or revoked"
            reason = self.add_member(c["new"], old["role"], old["client"])
            old["revoked"] = reason is None
            return reason
        elif name == "organisation-added":
            if c["role"] >= len(ROLES) or any(
                    x["client"] == c["org"] and x["role"] not in ("collector", "validator")
                    for x in self.members.values()):
                return f"organisation {c['org']!r} exists or has an unknown role"
            return self.add_member(c["key"], ROLES[c["role"]], c["org"])
        return None

    def add_member(self, key, role, client):
        if key_id(key) in self.members or key in SMALL_ORDER:
            return f"key id {key_id(key).hex()} already in use or key invalid"
        self.members[key_id(key)] = member(key.hex(), role, client)
        return None

    # 4.7 ------------------------------------------------------------------
    def sequences_4_7(self):
        complete = self.b["scope"].get("by") in ("incident", "client-range")
        by_author = {}
        for v in self.verified.values():
            by_author.setdefault(v["m"]["author"], []).append(v)
        for author, vs in by_author.items():
            item = f"author {author.hex()}"
            vs.sort(key=lambda v: v["m"]["sequence"])
            collector = self.members[author]["role"] == "collector"
            for a, b in zip(vs, vs[1:]):
                sa, sb = a["m"]["sequence"], b["m"]["sequence"]
                if sb == sa + 1 and b["m"]["prev"] != a["leaf_hash"]:
                    self.fail(item, "sequence-chain", f"{sb}'s prev is not the hash of {sa}")
                if complete and collector and sb > sa + 1:
                    self.fail(item, "sequence-complete", f"missing {sa + 1}..{sb - 1}")

    # 4.8 ------------------------------------------------------------------
    def anchors_4_8(self):
        self.anchors = []
        for i, a in enumerate(self.b["anchors"]):
            item = f"anchors[{i}]"
            if a["tree_size"] not in self.roots:
                self.fail(item, "checkpoint-present", f"no verified checkpoint of {a['tree_size']}")
                continue
            try:
                if unhex(a["root"], 32, "anchor-receipt") != self.roots[a["tree_size"]]:
                    raise Bad("anchor-receipt", "root differs from the verified checkpoint")
                if "receipt_leaf_index" in a:
                    v = self.verified.get(a["receipt_leaf_index"])
                    want = {k: a[k] for k in ("chain_id", "block_number", "block_time_s", "tree_size")}
                    want.update({k: unhex(a[k], 32, "anchor-receipt-entry")
                                 for k in ("tx_hash", "block_hash", "root")})
                    if v is None or v["m"]["kind"] != ("anchor-receipt", want):
                        raise Bad("anchor-receipt-entry", "receipt entry missing or different")
            except Bad as e:
                self.fail(item, e.check, e.reason)
                continue
            self.anchors.append(a)

    # 4.9 ------------------------------------------------------------------
    def coverage_4_9(self):
        receipts = {a.get("receipt_leaf_index") for a in self.b["anchors"]}
        out = []
        for li, v in sorted(self.verified.items()):
            times = [a["block_time_s"] for a in self.anchors if a["tree_size"] > li and
                     self.find(a["tree_size"]) == self.find(v["proof_size"])]
            at = min(times) if times else None
            if li not in receipts and (self.require_anchored or self.deadline_s is not None):
                if at is None:
                    self.fail(f"entry {li}", "anchored", "no anchor covers the entry")
                elif self.deadline_s is not None and at > self.deadline_s:
                    self.fail(f"entry {li}", "anchored-before", f"anchored at {at}")
            m = v["m"]
            out.append({"leaf_index": li, "leaf_hash": v["leaf_hash"].hex(),
                        "author": m["author"].hex(), "sequence": m["sequence"],
                        "kind": m["kind"][0], "client": m["client"],
                        "payload_checked": v["payload_checked"],
                        "block_height": v["block"]["height"],
                        "committed_at_ms": v["block"]["time"], "anchored_before_s": at})
        return out


def member(key_hex, role, client):
    return {"key": bytes.fromhex(key_hex), "role": role, "client": client, "revoked": False}


def parent_reason(h, p):
    if h["height"] == 1:
        if p is not None or h["parent"] != bytes(32):
            return "height 1 has a parent"
        return None
    if p is None:
        return "parent header missing"
    if p["id"] != h["parent"] or p["height"] != h["height"] - 1 or p["log_size"] > h["log_size"]:
        return "parent header does not match"
    return None


def encode_genesis(g):
    """Section 3.2 borsh encoding of the genesis document from its JSON form."""
    u64, u32 = (lambda x: struct.pack("<Q", x)), (lambda x: struct.pack("<I", x))
    lst = lambda xs, f: u32(len(xs)) + b"".join(f(x) for x in xs)
    key = lambda h: unhex(h, 32, "genesis-valid")
    role = lambda r: bytes([ROLES.index(r)])
    p = g["params"]
    return b"".join([
        bstr(g["network"]), bstr(g["log_origin"]), u64(g["genesis_time"]),
        lst(g["validators"]["validators"], lambda v: bstr(v["name"]) + bstr(v["org"]) + role(v["role"])
            + key(v["key"]) + u64(v["power"]) + bstr(v["p2p_address"])),
        lst(g["cosigners"], bstr),
        lst(g["organisations"], lambda o: bstr(o["id"]) + role(o["role"]) + key(o["key"])),
        lst(g["collectors"], lambda c: key(c["key"]) + bstr(c["client"]) + bstr(c["name"])),
        u32(p["max_block_messages"]), u64(p["max_block_bytes"]), u64(p["max_clock_drift_ms"]),
        u64(p["empty_block_interval_ms"]), u64(p["checkpoint_interval_ms"])])


def verify(bundle, **kw):
    if not isinstance(bundle, dict):
        raise Unusable("bundle is not a JSON object")
    try:
        return Verifier(bundle, **kw).run()
    except (KeyError, TypeError, AttributeError) as e:
        raise Unusable(f"malformed bundle: {e!r}")


# ---------------------------------------------------------------- self-test
def mutations(b):
    """Yield (name, mutated bundle, expected check, kwargs).

    Targets are picked from the bundle itself, so any bundle with payloads, at least two
    blocks and three entries, and one collector with three consecutive messages in a
    scope claiming completeness serves; a mutation whose target is absent is skipped."""
    report = verify(b)
    with_payload = next(i for i, e in enumerate(b["entries"])
                        if base64.b64decode(e.get("payload", "")))
    heights = [e["block_height"] for e in b["entries"]]
    other_block = next(i for i, h in enumerate(heights) if h != heights[0])
    by_author = {}
    for e in report["entries"]:
        if e["kind"] in ("evidence", "heartbeat"):  # collectors' streams are complete
            by_author.setdefault(e["author"], []).append((e["sequence"], e["leaf_index"]))
    middle = next(run[1][1] for run in map(sorted, by_author.values())
                  if len(run) >= 3 and run[1][0] == run[0][0] + 1 == run[2][0] - 1)
    def mut(f):
        c = copy.deepcopy(b); f(c); return c
    def b64edit(s, f):
        raw = bytearray(base64.b64decode(s)); f(raw); return base64.b64encode(bytes(raw)).decode()
    def flip(i):
        return lambda raw: raw.__setitem__(i, raw[i] ^ 1)
    def header_time(c):  # time is after network, height, round, proposer
        n = 4 + struct.unpack("<I", base64.b64decode(c["blocks"][-1]["header"])[:4])[0] + 8 + 4 + 8
        c["blocks"][-1]["header"] = b64edit(c["blocks"][-1]["header"], flip(n))
    def drop_lines(c, k):
        lines = c["checkpoints"][0].split("\n")
        c["checkpoints"][0] = "\n".join(lines[:-1 - k] + [""])
    def proof_hash(c):
        lines = c["entries"][1]["proof"].split("\n")
        lines[2] = base64.b64encode(bytes(32)).decode()
        c["entries"][1]["proof"] = "\n".join(lines)
    def dup_line(c):
        lines = c["checkpoints"][0].split("\n")
        c["checkpoints"][0] = "\n".join(lines[:-1] + [lines[-2], ""])
    def drop_entry(c):
        c["entries"] = [e for e in c["entries"] if e["leaf_index"] != middle]
    yield "flip payload byte", mut(lambda c: c["entries"][with_payload].update(
        payload=b64edit(c["entries"][with_payload]["payload"], flip(0)))), "payload-digest", {}
    yield "change block header time", mut(header_time), "block-certificate", {}
    yield "drop two cosignature lines", mut(lambda c: drop_lines(c, 2)), "checkpoint-quorum", {}
    yield "duplicate a cosignature line", mut(dup_line), "checkpoint-cosigner-once", {}
    yield "alter tlog-proof hash", mut(proof_hash), "inclusion", {}
    if b["consistency"] and b["consistency"][0]["proof"]:
        yield "alter consistency hash", mut(lambda c: c["consistency"][0]["proof"].__setitem__(
            0, "00" * 32)), "consistency", {}
    yield "alter block_proof hash", mut(lambda c: c["entries"][1]["block_proof"].__setitem__(
        0, "00" * 32)), "block-inclusion", {}
    yield "change genesis field", mut(lambda c: c["genesis"]["params"].update(
        max_clock_drift_ms=60_000)), "genesis-hash", {}
    yield "untrusted genesis", b, "genesis-trusted", {"trusted_hash": "00" * 32}
    yield "swap entry block_height", mut(lambda c: c["entries"][0].update(
        block_height=heights[other_block])), "block-range", {}
    yield "flip envelope signature", mut(lambda c: c["entries"][2].update(
        envelope=b64edit(c["entries"][2]["envelope"], flip(-1)))), "envelope-signature", {}
    yield "drop a collector's message", mut(drop_entry), "sequence-complete", {}
    yield "reorder entries", mut(lambda c: c["entries"].insert(3, c["entries"][1])), "entry-order", {}
    if b["anchors"]:
        yield "alter anchor root", mut(lambda c: c["anchors"][0].update(root="11" * 32)), "anchor-receipt", {}
    yield "unknown member", mut(lambda c: c.update(extra=1)), "format", {}


def self_test(bundle):
    ok = True
    base = verify(bundle)
    print(f"untouched bundle: {'passed' if base['passed'] else 'FAILED'}")
    ok &= base["passed"]
    for name, mutated, check, kw in mutations(bundle):
        got = sorted({f["check"] for f in verify(mutated, **kw)["failures"]})
        hit = check in got
        ok &= hit
        print(f"{'detected' if hit else 'MISSED  '} {name}: expected {check}, got {got}")
    return 0 if ok else 1


def main(argv):
    args, opts = [], {}
    it = iter(argv)
    for a in it:
        if a == "--genesis-hash":
            opts["trusted_hash"] = next(it, "").lower()
        elif a == "--deadline-s":
            opts["deadline_s"] = int(next(it, "0"))
        elif a == "--require-anchored":
            opts["require_anchored"] = True
        elif a == "--self-test":
            opts["self_test"] = True
        else:
            args.append(a)
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if os.path.getsize(args[0]) > 1 << 30:
            raise Unusable("bundle is larger than 1 GiB")
        with open(args[0], encoding="utf-8") as f:
            bundle = json.load(f)
        if opts.pop("self_test", False):
            return self_test(bundle)
        report = verify(bundle, **opts)
    except (OSError, ValueError, Unusable) as e:
        print(json.dumps({"passed": False, "error": str(e)}))
        return 2
    print(json.dumps(report, indent=2))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
