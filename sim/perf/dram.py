"""The DMA engines against the DRAM model (sim/dram_model.py), at burst granularity.

Both channels follow hw/axi/bursts.py: a descriptor's rows become INCR bursts within aligned
blocks of min(max_burst_beats, beats per 4 KiB) beats, one burst per cycle from the cycle
after the descriptor is accepted; the next descriptor is accepted in the cycle its
predecessor's last burst leaves.

Read channel (hw/axi/read_dma.py + the DRAM model), all times in cycles:
  AR(b)        >= AR(b-1) + 1, and >= last beat(b - max_outstanding) + 1 (the DRAM accepts an
               address while fewer than max_outstanding bursts are queued; the DMA's own limit
               of 16 is never the tighter one for max_outstanding <= 16)
  first beat   = max(AR(b) + latency, previous beat + interval)
  next beats   = previous beat + interval        (RREADY is high: the load unit and the
               fetcher take a word every cycle; LUT words are the exception: the activation
               tables take one every word_bytes + 1 cycles, and while a word waits on the
               DMA's output RREADY is low, so the beats wait too)
  word         on the DMA's output one cycle after its last beat.
The load unit takes its words through a one-word skid buffer: during a LUT load it holds the
next word while the tables write the current one, so the DMA runs one word ahead of the
tables, and the first word of the next LOAD waits until the last table word has left it.
Write channel (hw/axi/write_dma.py): a burst is taken into the AW register and the W/B FIFOs
(AWVALID the cycle after), W beats need the burst's AW accepted an edge earlier, the word on
the data stream (itself one cycle after the buffer reader's address), and one beat per
interval; the B response comes `latency` cycles after the burst's last beat, one per cycle.
"""

from __future__ import annotations

from hw.config import AcceleratorConfig
from sim.dram_model import DramTiming

__all__ = ["bursts_of", "ReadChannel", "WriteChannel"]

PAGE = 4096


def bursts_of(config: AcceleratorConfig, dram_addr: int, size0: int, count1: int, stride1: int,
              count2: int, stride2: int, word_bytes: int) -> list[int]:
    """Beats of every burst of a descriptor, in order: each row up to its first block
    boundary, whole blocks, the rest (blocks of min(max_burst_beats, beats per 4 KiB) beats,
    aligned to their size)."""
    bus = config.axi_data_bytes
    row_beats = size0 * word_bytes // bus
    block = min(config.max_burst_beats, PAGE // bus)
    out = []
    for i2 in range(count2):
        for i1 in range(count1):
            offset = (dram_addr + i2 * stride2 + i1 * stride1) // bus % block
            first = min(row_beats, block - offset)
            rest = row_beats - first
            out += [first] + [block] * (rest // block) + ([rest % block] if rest % block else [])
    return out


class ReadChannel:
    """The read DMA's burst generator, its AR side and the in-order R data."""

    def __init__(self, config: AcceleratorConfig, timing: DramTiming) -> None:
        self.config = config
        self.latency = timing.latency
        self.interval = timing.beat_interval(config.axi_data_bytes)
        self.outstanding = min(timing.max_outstanding, 16)
        self.free = 0            # first cycle the burst generator accepts a descriptor
        self.last_ar = -1
        self.last_beat = -(10 ** 9)
        self.ends: list[int] = []  # last-beat cycle of every burst so far
        self.o_free = 0            # the output register takes a word (after a LUT load)
        self.skid_free = 0         # the load unit's skid buffer takes a word (after a LUT load)
        self.tables_free = 0       # the activation tables take their next word

    def run(self, accept: int, bursts: list[int], word_beats: int, every_word: bool = False,
            word_gap: int = 1, load: bool = True) -> list[int]:
        """Issue a descriptor accepted at `accept`; returns the cycle its last word (or, with
        `every_word`, each of its words) is taken from the DMA output: one cycle after the
        word's last beat. With `word_gap` > 1 (LUT words: the activation tables write one
        entry per cycle) the cycles are those the tables take the words, at most one every
        `word_gap` cycles. `load` is False for the fetcher's descriptors, whose words do not
        pass the load unit's skid buffer."""
        if word_gap > 1 or (load and self.skid_free):
            words = self._run_words(accept, bursts, word_beats, word_gap)
            if word_gap == 1:
                self.skid_free = 0    # the skid buffer is out of the way from here on
            return words if every_word else words[-1:]
        ar = max(accept + 1, self.last_ar + 1)
        ends = self.ends
        n_out = self.outstanding
        beat = self.last_beat
        interval = self.interval
        lat = self.latency
        words = []
        for beats in bursts:
            if len(ends) >= n_out:
                ar = max(ar, ends[-n_out] + 1)
            first = max(ar + lat, beat + interval, self.o_free)
            if every_word:
                # words are whole numbers of beats and bursts split rows on word boundaries
                # only when a word is one beat or the burst is a whole number of words
                for k in range(word_beats - 1, beats, word_beats):
                    words.append(first + k * interval + 1)
            beat = first + (beats - 1) * interval
            ends.append(beat)
            ar += 1
        self.last_ar = ar - 1
        self.last_beat = beat
        self.free = self.last_ar          # the next descriptor may be accepted then
        if len(ends) > 4 * n_out:
            del ends[:-n_out]
        if not every_word:
            words.append(beat + 1)
        return words

    def _run_words(self, accept, bursts, word_beats, gap) -> list[int]:
        """A LOAD beat by beat: each word leaves the DMA output when the load unit's skid
        buffer is free (the cycle after its previous word was taken on) and is taken on by
        its buffer then, or by the activation tables (`gap` > 1) when they are free."""
        ar = max(accept + 1, self.last_ar + 1)
        ends, n_out, interval = self.ends, self.outstanding, self.interval
        beat = self.last_beat
        out_free, skid_free, tables_free = self.o_free, self.skid_free, self.tables_free
        left = word_beats
        taken_words = []
        for beats in bursts:
            if len(ends) >= n_out:
                ar = max(ar, ends[-n_out] + 1)
            start = ar + self.latency
            for _ in range(beats):
                beat = max(start, beat + interval, out_free)
                left -= 1
                if left == 0:
                    out_free = max(beat + 1, skid_free)
                    taken = out_free
                    if gap > 1:
                        taken = max(taken, tables_free)
                        tables_free = taken + gap
                    skid_free = taken + 1
                    taken_words.append(taken)
                    left = word_beats
            ends.append(beat)
            ar += 1
        self.last_ar = ar - 1
        self.last_beat = beat
        self.free = self.last_ar
        self.o_free, self.skid_free, self.tables_free = out_free, skid_free, tables_free
        if len(ends) > 4 * n_out:
            del ends[:-n_out]
        return taken_words


class WriteChannel:
    """The write DMA and the DRAM's W/B side, fed by the store unit's buffer reader."""

    def __init__(self, config: AcceleratorConfig, timing: DramTiming) -> None:
        self.config = config
        self.latency = timing.latency
        self.interval = timing.beat_interval(config.axi_data_bytes)
        self.outstanding = timing.max_outstanding
        self.free = 0              # burst generator: first cycle it accepts a descriptor
        self.last_take = -1        # last burst taken into AW / W / B FIFOs
        self.aw_done: list[int] = []   # AW handshake per burst
        self.w_end: list[int] = []     # last W beat per burst
        self.b: list[int] = []         # B handshake per burst
        self.last_w = -(10 ** 9)       # last W handshake
        self.last_word = -(10 ** 9)    # last word taken from the data stream
        self.reader_free = 0           # the linear address generator takes a command

    def run(self, issue: int, bursts: list[int], word_beats: int) -> tuple[int, int]:
        """A STORE whose descriptor and read command are both accepted at `issue`.
        Returns (cycle of its last data word leaving the reader, cycle `done` strobes)."""
        lat, interval = self.latency, self.interval
        nb = len(self.aw_done)
        take = max(issue + 1, self.last_take + 1)
        # words: linear generator address at issue+1, reader output at issue+2 onward
        word_ready = issue + 2
        w = self.last_w
        word_t = self.last_word
        first_addr = issue + 1
        addr_taken = first_addr - 1   # the reader takes an address when its output is free
        beat_in_word = 0
        for beats in bursts:
            # take needs the AW register free (AW accepted) and FIFO room (16 bursts)
            if nb >= 16:
                take = max(take, self.b[nb - 16] + 1)
            aw = take + 1
            if nb >= self.outstanding:
                aw = max(aw, self.w_end[nb - self.outstanding] + 1)
            if word_beats == 1:
                # one beat per word: after the burst's first beat the W register is the
                # bottleneck, word k enters when beat k-1 leaves and beats go every interval
                addr_taken = max(addr_taken + 1, word_t)
                word_t = max(word_ready, word_t + 1, w, take + 1)
                w = max(word_t + 1, aw + 1, w + interval)
                if beats > 1:
                    before_last = word_t if beats == 2 else w + (beats - 3) * interval
                    addr_taken = max(addr_taken + beats - 1, before_last)
                    word_t = w + (beats - 2) * interval
                    w += (beats - 1) * interval
                word_ready = word_t + 1
            else:
                for _ in range(beats):
                    if beat_in_word == 0:
                        # the reader took this word's address when its output was free
                        addr_taken = max(addr_taken + 1, word_t)
                        # a word enters the W register when it is empty or being emptied
                        word_t = max(word_ready, word_t + 1, w, take + 1)
                        word_ready = word_t + 1
                        wr = word_t
                    else:
                        wr = max(wr + 1, w)
                    w = max(wr + 1, aw + 1, w + interval)
                    beat_in_word = (beat_in_word + 1) % word_beats
            self.aw_done.append(aw)
            self.w_end.append(w)
            b = max(w + lat, self.b[-1] + 1 if self.b else 0)
            self.b.append(b)
            self.last_take = take
            take = max(take + 1, aw)
            nb += 1
        self.last_w = w
        self.last_word = word_t
        self.free = self.last_take
        self.reader_free = addr_taken
        return word_t, self.b[-1] + 2
