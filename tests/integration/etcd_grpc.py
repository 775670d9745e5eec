"""A small etcd v3 gRPC client for the fault tests, on the generated stubs
that python3-etcd3 ships (etcd3.etcdrpc), so the tests control every
connection themselves: which member a request goes to, when a watch stream
is broken and from which revision it resumes.

The v3lock Lock/Unlock messages are not among those stubs; they have two
fields each and are encoded here by hand.

Nothing here is shared between threads except where a class says so.
"""
import queue

import grpc
from etcd3.etcdrpc import rpc_pb2 as pb
from etcd3.etcdrpc import rpc_pb2_grpc as pbg

RPC_TIMEOUT = 2.0


class Conn:
    """One gRPC channel to one member and the stubs on it."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.channel = grpc.insecure_channel(endpoint)
        self.kv = pbg.KVStub(self.channel)
        self.watch = pbg.WatchStub(self.channel)
        self.lease = pbg.LeaseStub(self.channel)
        self.maintenance = pbg.MaintenanceStub(self.channel)
        self._lock = self.channel.unary_unary("/v3lockpb.Lock/Lock")
        self._unlock = self.channel.unary_unary("/v3lockpb.Lock/Unlock")

    def close(self):
        self.channel.close()

    def put(self, key, value, lease=0, timeout=RPC_TIMEOUT):
        return self.kv.Put(pb.PutRequest(key=key.encode(), value=value.encode(), lease=lease),
                           timeout=timeout)

    def delete(self, key, timeout=RPC_TIMEOUT):
        return self.kv.DeleteRange(pb.DeleteRangeRequest(key=key.encode()), timeout=timeout)

    def get(self, key, timeout=RPC_TIMEOUT, serializable=False):
        return self.kv.Range(pb.RangeRequest(key=key.encode(), serializable=serializable),
                             timeout=timeout)

    def revision(self, timeout=RPC_TIMEOUT):
        return self.kv.Range(pb.RangeRequest(key=b"\0", limit=1), timeout=timeout).header.revision

    def txn(self, compare, success, failure, timeout=RPC_TIMEOUT):
        return self.kv.Txn(pb.TxnRequest(compare=compare, success=success, failure=failure),
                           timeout=timeout)

    def grant(self, ttl, timeout=RPC_TIMEOUT):
        return self.lease.LeaseGrant(pb.LeaseGrantRequest(TTL=ttl), timeout=timeout).ID

    def revoke(self, lease_id, timeout=RPC_TIMEOUT):
        return self.lease.LeaseRevoke(pb.LeaseRevokeRequest(ID=lease_id), timeout=timeout)

    def lock(self, name, lease_id, timeout):
        """v3lock Lock: (key, header). Blocks until held or the timeout."""
        raw = self._lock(field_bytes(1, name.encode()) + field_varint(2, lease_id),
                         timeout=timeout)
        fields = decode_fields(raw)
        header = pb.ResponseHeader.FromString(fields.get(1, b""))
        return fields.get(2, b"").decode(), header

    def unlock(self, key, timeout=RPC_TIMEOUT):
        self._unlock(field_bytes(1, key.encode()), timeout=timeout)


def put_op(key, value):
    return pb.RequestOp(request_put=pb.PutRequest(key=key.encode(), value=value.encode()))


def create_revision_is(key, rev):
    return pb.Compare(result=pb.Compare.EQUAL, target=pb.Compare.CREATE,
                      key=key.encode(), create_revision=rev)


def prefix_end(prefix):
    b = bytearray(prefix.encode())
    b[-1] += 1
    return bytes(b)


def event_tuple(ev):
    """An event as comparable data: (type, key, value, mod, create, version)."""
    kv = ev.kv
    return ("DELETE" if ev.type == 1 else "PUT", kv.key.decode(), kv.value.decode(),
            kv.mod_revision, kv.create_revision, kv.version)


def watch_request(prefix, start_revision):
    return pb.WatchRequest(create_request=pb.WatchCreateRequest(
        key=prefix.encode(), range_end=prefix_end(prefix), start_revision=start_revision))


def replay(endpoint, key, range_end, start_rev, end_rev, timeout=15.0):
    """Event tuples of [key, range_end) from start_rev through end_rev, as one
    member's watch replays them (the store's history of that range). The
    range must have an event at end_rev."""
    conn = Conn(endpoint)
    reqs = queue.Queue()
    reqs.put(pb.WatchRequest(create_request=pb.WatchCreateRequest(
        key=key.encode(), range_end=range_end, start_revision=start_rev)))

    def requests():
        while True:
            r = reqs.get()
            if r is None:
                return
            yield r
    events = []
    call = conn.watch.Watch(requests(), timeout=timeout)
    try:
        for resp in call:
            if resp.canceled:
                raise AssertionError("replay canceled: %s" % resp.cancel_reason)
            events.extend(event_tuple(e) for e in resp.events)
            if events and events[-1][3] >= end_rev:
                break
    finally:
        reqs.put(None)
        call.cancel()
        conn.close()
    return [e for e in events if e[3] <= end_rev]


# --- protobuf wire format, for the two v3lock messages -----------------------

def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, value):
    return _varint(num << 3) + _varint(value)


def field_bytes(num, data):
    return _varint((num << 3) | 2) + _varint(len(data)) + data


def decode_fields(data):
    """Top-level fields of a message: {number: bytes or int}, last one wins."""
    fields, i = {}, 0

    def read_varint():
        nonlocal i
        shift = result = 0
        while True:
            b = data[i]
            i += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result
    while i < len(data):
        tag = read_varint()
        num, wire = tag >> 3, tag & 7
        if wire == 0:
            fields[num] = read_varint()
        elif wire == 2:
            n = read_varint()
            fields[num] = data[i:i + n]
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return fields
