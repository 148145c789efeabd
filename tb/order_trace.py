"""The order in which the device makes things visible, on the RTL and in the golden model.

Memory snapshots at quiet points cannot tell the order of writes, yet the spec orders them: the
reply bytes, then the used element, then used.idx (VQ-9), and the interrupt only after used.idx
(VQ-15, MMIO-4). So both sides' DMA writes are traced byte by byte, with the interrupt line's rises
among them:

* the RTL's writes in the order the memory acknowledged them (B handshake), its rises placed by
  simulation time; a rise in the same clock edge as a B handshake counts as before it, since the
  driver could see the interrupt before that write;
* the model's writes in program order, with its rises where ``VirtioGpioDevice`` raised the line.

At each quiet point the two streams since the last one must be equal. After a register write that
abandons work in flight (reset, QueueReady = 0) the RTL's stream must be a prefix of the model's,
which ran the work to its end (contract §6).
"""

from dataclasses import dataclass

from virtio_gpio.model.memory import BusError, BusResponse, GuestMemory

IRQ = "irq"


@dataclass(frozen=True)
class ErrorWrite:
    """A byte of a write that got an error response (nothing was written)."""
    addr: int

    def __repr__(self):
        return f"error@{self.addr:#x}"


def _first_difference(rtl: list, model: list) -> int:
    """The first index at which the two differ, or where the shorter one ends."""
    return next((i for i, (r, m) in enumerate(zip(rtl, model)) if r != m), min(len(rtl), len(model)))


def _describe(events: list, at: int) -> str:
    window = events[max(0, at - 2):at + 3]
    return ", ".join(e if e == IRQ else f"{e:#x}" if isinstance(e, int) else repr(e) for e in window)


class OrderTrace:
    """Collects both streams; ``compare`` and ``compare_prefix`` consume what was collected."""

    def __init__(self, model_memory: GuestMemory):
        self._rtl: list[tuple[float, int, object]] = []  # (time, 0 = rise / 1 = write, event)
        self._model: list[object] = []
        self._model_data: list[int | None] = []  # the byte each model event wrote (None: none)
        self._record_model_writes(model_memory)

    # -- collecting ------------------------------------------------------------------------

    def rtl_write_acked(self, time_ns: float, accesses) -> None:
        for a in accesses:
            for addr in range(a.addr, a.addr + a.size):
                self._rtl.append((time_ns, 1, addr if a.response is BusResponse.OKAY else ErrorWrite(addr)))

    def rtl_irq_rise(self, time_ns: float) -> None:
        self._rtl.append((time_ns, 0, IRQ))

    def model_irq_rise(self, interrupt_status: int) -> None:
        self._model.append(IRQ)
        self._model_data.append(int(interrupt_status))

    def _record_model_writes(self, memory: GuestMemory) -> None:
        # The model writes through this one method; wrapping it on the instance keeps the model
        # and its memory free of testbench hooks.
        write = memory.dma_write

        def traced_dma_write(addr: int, data: bytes) -> None:
            try:
                write(addr, data)
            except BusError:
                self._model += [ErrorWrite(addr + i) for i in range(len(data))]
                self._model_data += [None] * len(data)
                raise
            self._model += range(addr, addr + len(data))
            self._model_data += data
        memory.dma_write = traced_dma_write

    # -- checking --------------------------------------------------------------------------

    def _take(self) -> tuple[list, list, list]:
        rtl = [e for _, _, e in sorted(self._rtl, key=lambda t: (t[0], t[1]))]
        model, data = self._model, self._model_data
        self._rtl, self._model, self._model_data = [], [], []
        return rtl, model, data

    def compare(self) -> str | None:
        """None when both sides made the same writes and rises in the same order since the last
        call; else what differs."""
        rtl, model, _ = self._take()
        if rtl == model:
            return None
        at = _first_difference(rtl, model)
        return (f"order of DMA writes and interrupt rises differs at event {at} "
                f"(RTL {len(rtl)} events, model {len(model)}): RTL [{_describe(rtl, at)}], "
                f"model [{_describe(model, at)}]")

    def compare_prefix(self) -> tuple[str | None, list[tuple[int, int]], int]:
        """After abandoned work: the RTL's events must be the model's first ones. Returns what is
        wrong (or None), the (address, byte) writes of the model's events in that prefix and the
        InterruptStatus bits its rises set, so that the model can be brought to what the RTL did.
        (A bit the model set while the line was already high is not seen here: the tests that
        abandon work raise none.)"""
        rtl, model, data = self._take()
        if rtl != model[:len(rtl)]:
            at = _first_difference(rtl, model)
            return (f"after abandoned work, the RTL's writes and rises are not a prefix of the "
                    f"model's, from event {at}: RTL [{_describe(rtl, at)}], model "
                    f"[{_describe(model, at)}]"), [], 0
        prefix = list(zip(model[:len(rtl)], data))
        writes = [(a, d) for a, d in prefix if isinstance(a, int)]
        raised = 0
        for event, status in prefix:
            if event == IRQ:
                raised |= status
        return None, writes, raised
