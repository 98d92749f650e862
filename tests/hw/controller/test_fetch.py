"""The instruction fetcher's requests at the end of DRAM and of the program: every word of
min(length, words left in DRAM) is requested once, in runs of at most `request_words`, then a
fault marker; a misaligned address gives only the MISALIGNED marker."""

import pytest

from hw import isa
from hw.config import preset
from hw.controller.fetch import InstructionFetcher
from hw.isa import ErrorCode, Opcode
from tests.streams import run_sim

CONFIG = preset("tiny").replace(dram_bytes=1 << 16)
REQUEST_WORDS = 4
NOT_END = Opcode.LOAD.value  # any word whose opcode is not END


def expected_requests(address: int, length: int) -> list[tuple[int, int]]:
    if address % isa.INSTR_BYTES:
        return []
    words = min(length, max(CONFIG.dram_bytes - address, 0) // isa.INSTR_BYTES)
    runs = []
    while words:
        run = min(words, REQUEST_WORDS)
        runs.append((address, run))
        address += run * isa.INSTR_BYTES
        words -= run
    return runs


def fetch(address: int, length: int) -> tuple[list[tuple[int, int]], int, ErrorCode]:
    """(requests, words delivered on `o`, the marker's fault) for one run."""
    dut = InstructionFetcher(config=CONFIG, request_words=REQUEST_WORDS, prefetch_words=8)
    result = {}

    async def bench(ctx):
        ctx.set(dut.address, address)
        ctx.set(dut.length, length)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.req.ready, 1)
        ctx.set(dut.o.ready, 1)
        requests, pending, words, fault = [], 0, 0, None
        for _ in range(400):
            if ctx.get(dut.req.valid):
                req = ctx.get(dut.req.payload)
                requests.append((req.address, req.words))
                pending += req.words
            if ctx.get(dut.o.valid):
                out = ctx.get(dut.o.payload)
                if out.fault != ErrorCode.NONE:
                    fault = out.fault
                    break
                words += 1
            ctx.set(dut.words.valid, pending > 0)
            ctx.set(dut.words.payload, NOT_END)
            pending -= pending > 0
            await ctx.tick()
        result.update(requests=requests, words=words, fault=fault)

    run_sim(dut, bench)
    return result["requests"], result["words"], result["fault"]


END = CONFIG.dram_bytes
W = isa.INSTR_BYTES


@pytest.mark.parametrize("address", [0, W, END - 6 * W, END - 5 * W, END - 4 * W, END - 3 * W,
                                     END - W, END, END + W, 3])
@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 9])
def test_requests_at_the_end_of_dram_and_program(address, length):
    requests, words, fault = fetch(address, length)
    assert requests == expected_requests(address, length)
    assert words == sum(run for _, run in requests)
    assert fault == (ErrorCode.MISALIGNED if address % W else ErrorCode.DRAM_RANGE)
