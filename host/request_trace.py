"""What the guest asked for and what the device answered, read back from a ring's used elements:
the record of a VM's session (``Server.events``, the backend's log), so that a test script can see
what the driver really did, and what one does differently from another.

A used element names the head of a chain the device has finished with; the chain's buffers are
still the driver's request and the device's reply, since the guest is told of the completion only
afterwards (the call eventfd). A chain the backend cannot follow (the guest reused it early, or a
malformed ring the device refused) is recorded as such, never raised.
"""

from dataclasses import dataclass

from virtio_gpio.model.constants import DescFlags, Direction, IrqStatus, IrqType, MsgType, ReplyStatus
from virtio_gpio.model.layouts import (
    DESC_PACKER, DESC_SIZE, GPIO_REQUEST_PACKER, GPIO_REQUEST_SIZE, IRQ_REQUEST_SIZE, USED_ELEM_PACKER,
    RingGeometry,
)
from virtio_gpio.model.memory import GuestMemory

MAX_CHAIN = 64  # more descriptors than any request of this device has: the ring is not followed


@dataclass(frozen=True)
class Completion:
    queue: str  # "requestq" or "eventq"
    text: str   # "SET_DIRECTION 3 OUT -> OK 0", "event 2 -> VALID"

    def __str__(self) -> str:
        return f"{self.queue} {self.text}"


def _chain(memory: GuestMemory, desc: int, num: int, head: int) -> tuple[bytes, bytes] | str:
    """(readable bytes, writable bytes) of the chain at ``head`` (indirect tables followed), or why
    it cannot be followed."""
    readable, writable = bytearray(), bytearray()
    table, size, index = desc, num, head
    for _ in range(MAX_CHAIN):
        if index >= size:
            return f"descriptor {index} is outside its table of {size}"
        addr, length, flags, nxt = DESC_PACKER.unpack(memory.read(table + DESC_SIZE * index, DESC_SIZE))
        if flags & DescFlags.INDIRECT:
            table, size, index = addr, length // DESC_SIZE, 0
            continue
        if not memory.is_mapped(addr, length):
            return f"a buffer [{addr:#x}, +{length}) outside guest RAM"
        (writable if flags & DescFlags.WRITE else readable).extend(memory.read(addr, length))
        if not flags & DescFlags.NEXT:
            return bytes(readable), bytes(writable)
        index = nxt
    return f"a chain longer than {MAX_CHAIN} descriptors"


def _name(enum, value: int) -> str:
    try:
        return enum(value).name
    except ValueError:
        return f"{value:#x}"


def describe_request(request: bytes, reply: bytes) -> str:
    msg_type, gpio, value = GPIO_REQUEST_PACKER.unpack(request[:GPIO_REQUEST_SIZE])
    shown = {MsgType.SET_DIRECTION: lambda v: _name(Direction, v),
             MsgType.SET_IRQ_TYPE: lambda v: _name(IrqType, v)}.get(msg_type, str)(value)
    status = _name(ReplyStatus, reply[0]) if reply else "no reply"
    answer = f"{len(reply) - 1} name bytes" if msg_type == MsgType.GET_LINE_NAMES else \
        " ".join(str(b) for b in reply[1:])
    return f"{_name(MsgType, msg_type)} {gpio} {shown} -> {status} {answer}".rstrip()


def completions(memory: GuestMemory, queue: int, desc: int, used: int, num: int, start: int,
                end: int) -> list[Completion]:
    """The used elements ``start`` up to ``end`` (ring indices, mod 2^16) of a ring."""
    geometry = RingGeometry(num)
    found = []
    name = "requestq" if queue == 0 else "eventq"
    for i in range((end - start) & 0xFFFF):
        slot = (start + i) % num
        head, length = USED_ELEM_PACKER.unpack(memory.read(used + geometry.used_elem(slot), 8))
        chain = _chain(memory, desc, num, head)
        if isinstance(chain, str):
            found.append(Completion(name, f"chain {head} cannot be followed ({chain}; the guest "
                                          f"may have reused it already)"))
            continue
        readable, writable = chain
        writable = writable[:length]
        if queue == 0 and len(readable) >= GPIO_REQUEST_SIZE:
            found.append(Completion(name, describe_request(readable, writable)))
        elif queue == 1 and len(readable) >= IRQ_REQUEST_SIZE:
            status = _name(IrqStatus, writable[0]) if writable else "no reply"
            found.append(Completion(name, f"event {int.from_bytes(readable[:2], 'little')} -> {status}"))
        else:
            found.append(Completion(name, f"chain {head}: {len(readable)} bytes out, "
                                          f"{len(writable)} back"))
    return found
