// Systolica Verilator harness: the generated top level, a DRAM behind its AXI4 master port, and
// a scripted AXI4-Lite master for its control registers. The DRAM follows exactly the rules of
// sim/dram_model.py (latency, beat interval, outstanding bursts, DECERR outside the memory), so
// a program takes the same number of cycles here as under Amaranth's simulator.
//
// usage: harness DRAM_IMAGE DRAM_BYTES LATENCY BEAT_INTERVAL MAX_OUTSTANDING SCRIPT [TRACE.fst]
// SCRIPT lines (executed in order, results printed as one JSON object on stdout, which also
// reports "loop_cycles", "loop_ns" and "loop_cpu_ns": the cycles clocked inside wait_irq, their
// wall time and their CPU time (the speed without process start-up, DRAM image I/O or register
// accesses; CPU time stays meaningful on a loaded machine):
//   write ADDR VALUE          AXI4-Lite write
//   read NAME ADDR            AXI4-Lite read, reported as "NAME": value
//   wait_irq NAME MAX_CYCLES  clock until irq; "NAME": cycles waited (-1 on timeout)
//   dump ADDR LENGTH FILE     write DRAM bytes to FILE
//   retire_trace FILE         from now on, log "cycle mask" for every cycle the `retire`
//                             output is non-zero (bit 0 load, 1 compute, 2 store finished)
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "Vtop.h"
#include "Vtop___024root.h"
#include "verilated.h"
#if VM_TRACE
#include "verilated_fst_c.h"
#endif

namespace {

// Lets the model's next eval() see a rising edge of `clk` without an eval() at clk = 0.
// Verilator detects the edge by comparing `clk` with the value it saw at the previous eval();
// the clk = 0 eval only recomputes the input-combinational logic, which the rising-edge eval
// recomputes anyway, and the outputs the harness samples between the two evals do not depend
// on the inputs combinationally (Verilator computes no output port in that region; the
// Verilator == Amaranth cycle-for-cycle tests would catch it if one did). Skipping it made
// the default model ~5% faster. Returns false (the caller then evaluates at clk = 0) if this
// Verilator names its edge detector differently.
template <class Root>
bool clock_low_without_eval(Root* root) {
    if constexpr (requires { root->__Vtrigprevexpr___TOP__clk__0 = 0; }) {
        root->__Vtrigprevexpr___TOP__clk__0 = 0;
        return true;
    } else {
        return false;
    }
}

// ---- moving bytes in and out of Verilator's port types ------------------------------------
template <typename T>
void put_bytes(T& port, const uint8_t* src, size_t n) {
    if constexpr (std::is_integral_v<T>) {
        uint64_t v = 0;
        std::memcpy(&v, src, n < 8 ? n : 8);
        port = static_cast<T>(v);
    } else {
        for (size_t w = 0; w * 4 < n; ++w) {
            uint32_t v = 0;
            std::memcpy(&v, src + 4 * w, (n - 4 * w) < 4 ? (n - 4 * w) : 4);
            port[w] = v;
        }
    }
}

template <typename T>
void get_bytes(const T& port, uint8_t* dst, size_t n) {
    if constexpr (std::is_integral_v<T>) {
        uint64_t v = static_cast<uint64_t>(port);
        std::memcpy(dst, &v, n < 8 ? n : 8);
    } else {
        for (size_t w = 0; w * 4 < n; ++w) {
            uint32_t v = port[w];
            std::memcpy(dst + 4 * w, &v, (n - 4 * w) < 4 ? (n - 4 * w) : 4);
        }
    }
}

template <typename T>
uint64_t get_u64(const T& port) {
    if constexpr (std::is_integral_v<T>) {
        return static_cast<uint64_t>(port);
    } else {
        return static_cast<uint64_t>(port[0]) | (static_cast<uint64_t>(port[1]) << 32);
    }
}

struct Response {
    uint32_t id;
    uint32_t resp;
    uint64_t valid_at;
};

struct Burst {
    uint32_t id;
    uint64_t addr;
    uint32_t beats;
    uint32_t size;
    uint64_t start;
    uint32_t done = 0;
};

// ---- the DRAM: a transliteration of sim/dram_model.py -------------------------------------
class Dram {
  public:
    Dram(std::vector<uint8_t> mem, size_t bus_bytes, uint64_t latency, uint64_t interval,
         size_t max_outstanding)
        : mem_(std::move(mem)), bus_(bus_bytes), latency_(latency), interval_(interval),
          max_out_(max_outstanding) {}

    struct Out {
        bool arready, awready, rvalid, rlast, wready, bvalid;
        uint32_t rid, rresp, bid, bresp;
        // Fixed size: a std::vector here cost a heap allocation every simulated cycle.
        std::array<uint8_t, BUS_BYTES> rdata;
    };

    Out outputs() const {
        Out o{};
        o.arready = reads_.size() < max_out_;
        o.awready = writes_.size() < max_out_;
        if (!reads_.empty() && cycle_ >= reads_.front().start && cycle_ >= next_r_) {
            const Burst& b = reads_.front();
            uint64_t addr = b.addr + uint64_t(b.done) * b.size;
            uint64_t base = addr - addr % b.size;
            size_t lane = addr % bus_ - addr % b.size;
            bool ok = base + b.size <= mem_.size();
            if (ok) std::memcpy(o.rdata.data() + lane, mem_.data() + base, b.size);
            o.rvalid = true;
            o.rid = b.id;
            o.rresp = ok ? 0 : 3;
            o.rlast = b.done == b.beats - 1;
        }
        o.wready = !writes_.empty() && cycle_ >= next_w_;
        if (!responses_.empty() && cycle_ >= responses_.front().valid_at) {
            o.bvalid = true;
            o.bid = responses_.front().id;
            o.bresp = responses_.front().resp;
        }
        return o;
    }

    struct Master {
        bool arvalid, rready, awvalid, wvalid, bready;
        uint32_t arid, arlen, arsize, awid, awlen, awsize;
        uint64_t araddr, awaddr, wstrb;
        std::array<uint8_t, BUS_BYTES> wdata;  // read from the model only on a W handshake
    };

    void clock(const Master& m, const Out& d) {
        if (m.arvalid && d.arready)
            reads_.push_back({m.arid, m.araddr, m.arlen + 1, 1u << m.arsize, cycle_ + latency_});
        if (d.rvalid && m.rready) {
            Burst& b = reads_.front();
            ++b.done;
            read_bytes_ += b.size;
            next_r_ = cycle_ + interval_;
            if (b.done == b.beats) reads_.pop_front();
        }
        if (m.awvalid && d.awready)
            writes_.push_back({m.awid, m.awaddr, m.awlen + 1, 1u << m.awsize, 0});
        if (d.wready && m.wvalid) {
            Burst& b = writes_.front();
            uint64_t addr = b.addr + uint64_t(b.done) * b.size;
            uint64_t base = addr - addr % bus_;
            if (base + bus_ <= mem_.size()) {
                for (size_t i = 0; i < bus_; ++i)
                    if ((m.wstrb >> i) & 1) mem_[base + i] = m.wdata[i];
            } else {
                write_error_ = true;
            }
            ++b.done;
            write_bytes_ += b.size;
            next_w_ = cycle_ + interval_;
            if (b.done == b.beats) {
                responses_.push_back({b.id, write_error_ ? 3u : 0u, cycle_ + latency_});
                writes_.pop_front();
                write_error_ = false;
            }
        }
        if (d.bvalid && m.bready) responses_.pop_front();
        ++cycle_;
    }

    std::vector<uint8_t>& memory() { return mem_; }
    uint64_t read_bytes() const { return read_bytes_; }
    uint64_t write_bytes() const { return write_bytes_; }

  private:
    std::vector<uint8_t> mem_;
    size_t bus_;
    uint64_t latency_, interval_;
    size_t max_out_;
    uint64_t cycle_ = 0, next_r_ = 0, next_w_ = 0;
    std::deque<Burst> reads_, writes_;
    std::deque<Response> responses_;
    bool write_error_ = false;
    uint64_t read_bytes_ = 0, write_bytes_ = 0;
};

class Harness {
  public:
    Harness(Dram& dram, const char* trace_path) : dram_(dram), top_(new Vtop) {
#if VM_TRACE
        if (trace_path) {
            Verilated::traceEverOn(true);
            trace_ = std::make_unique<VerilatedFstC>();
            top_->trace(trace_.get(), 99);
            trace_->open(trace_path);
        }
#else
        (void)trace_path;
#endif
        bus_ = bus_bytes();
        idle_lite();
        // Four reset cycles. The model's `rst` port is registered (sim/verilator/build.py), so
        // the design sees it one cycle late: rst high for three ticks, then one more tick.
        top_->rst = 1;
        top_->clk = 0;
        top_->eval();   // initial values settled, clk seen low
        for (int i = 0; i < 3; ++i) tick();
        top_->rst = 0;
        tick();
        cycles_ = 0;  // count from the first cycle out of reset, as the Amaranth backend does
    }
    ~Harness() {
#if VM_TRACE
        if (trace_) trace_->close();
#endif
        top_->final();
    }

    // The bus width is fixed by the configuration the model was built for (-DBUS_BYTES=...).
    static size_t bus_bytes() { return BUS_BYTES; }

    // One clock cycle: drive the DRAM's outputs, settle, sample the master, then the edge.
    void tick() {
        Dram::Out d = dram_.outputs();
        top_->m_axi_arready = d.arready;
        top_->m_axi_awready = d.awready;
        top_->m_axi_rvalid = d.rvalid;
        top_->m_axi_rlast = d.rlast;
        top_->m_axi_rid = d.rid;
        top_->m_axi_rresp = d.rresp;
        put_bytes(top_->m_axi_rdata, d.rdata.data(), bus_);
        top_->m_axi_wready = d.wready;
        top_->m_axi_bvalid = d.bvalid;
        top_->m_axi_bid = d.bid;
        top_->m_axi_bresp = d.bresp;
        top_->clk = 0;
        if (tracing() || !clock_low_without_eval(top_->rootp)) {
            top_->eval();
            dump();
        }
        Dram::Master m;
        m.arvalid = top_->m_axi_arvalid;
        m.arid = top_->m_axi_arid;
        m.araddr = top_->m_axi_araddr;
        m.arlen = top_->m_axi_arlen;
        m.arsize = top_->m_axi_arsize;
        m.rready = top_->m_axi_rready;
        m.awvalid = top_->m_axi_awvalid;
        m.awid = top_->m_axi_awid;
        m.awaddr = top_->m_axi_awaddr;
        m.awlen = top_->m_axi_awlen;
        m.awsize = top_->m_axi_awsize;
        m.wvalid = top_->m_axi_wvalid;
        if (m.wvalid && d.wready) {
            m.wstrb = get_u64(top_->m_axi_wstrb);
            get_bytes(top_->m_axi_wdata, m.wdata.data(), bus_);
        }
        m.bready = top_->m_axi_bready;
        if (retire_log_ && top_->retire) *retire_log_ << cycles_ << ' ' << int(top_->retire) << '\n';
        lite_sample_ = {top_->s_axil_awready != 0, top_->s_axil_wready != 0,
                        top_->s_axil_bvalid != 0, top_->s_axil_arready != 0,
                        top_->s_axil_rvalid != 0, static_cast<uint32_t>(top_->s_axil_rdata)};
        top_->clk = 1;
        top_->eval();
        ++time_;
        dump();
        dram_.clock(m, d);
        ++cycles_;
    }

    void lite_write(uint32_t addr, uint32_t value) {
        top_->s_axil_awaddr = addr;
        top_->s_axil_awvalid = 1;
        top_->s_axil_wdata = value;
        top_->s_axil_wstrb = 0xF;
        top_->s_axil_wvalid = 1;
        top_->s_axil_bready = 1;
        bool aw = false, w = false;
        for (int guard = 0; guard < 1000; ++guard) {
            tick();
            aw = aw || lite_sample_.awready;
            w = w || lite_sample_.wready;
            if (aw) top_->s_axil_awvalid = 0;
            if (w) top_->s_axil_wvalid = 0;
            if (aw && w && lite_sample_.bvalid) break;
        }
        idle_lite();
    }

    uint32_t lite_read(uint32_t addr) {
        top_->s_axil_araddr = addr;
        top_->s_axil_arvalid = 1;
        top_->s_axil_rready = 1;
        bool ar = false;
        uint32_t value = 0;
        for (int guard = 0; guard < 1000; ++guard) {
            tick();
            ar = ar || lite_sample_.arready;
            if (ar) top_->s_axil_arvalid = 0;
            if (lite_sample_.rvalid) {
                value = lite_sample_.rdata;
                break;
            }
        }
        idle_lite();
        return value;
    }

    int64_t wait_irq(uint64_t max_cycles) {
        auto start = std::chrono::steady_clock::now();
        uint64_t cpu_start = cpu_ns();
        int64_t waited = -1;
        for (uint64_t n = 0; n < max_cycles; ++n) {
            if (top_->irq) {
                waited = static_cast<int64_t>(n);
                break;
            }
            tick();
        }
        loop_cycles_ += waited < 0 ? max_cycles : static_cast<uint64_t>(waited);
        loop_ns_ += static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now() - start).count());
        loop_cpu_ns_ += cpu_ns() - cpu_start;
        return waited;
    }

    uint64_t cycles() const { return cycles_; }
    uint64_t loop_cycles() const { return loop_cycles_; }
    uint64_t loop_ns() const { return loop_ns_; }
    uint64_t loop_cpu_ns() const { return loop_cpu_ns_; }
    void log_retirements(std::ostream* out) { retire_log_ = out; }

  private:
    struct LiteSample {
        bool awready, wready, bvalid, arready, rvalid;
        uint32_t rdata;
    };

    static uint64_t cpu_ns() {
        timespec t{};
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        return static_cast<uint64_t>(t.tv_sec) * 1000000000u + static_cast<uint64_t>(t.tv_nsec);
    }

    void idle_lite() {
        top_->s_axil_awvalid = 0;
        top_->s_axil_wvalid = 0;
        top_->s_axil_bready = 0;
        top_->s_axil_arvalid = 0;
        top_->s_axil_rready = 0;
    }

    bool tracing() const {
#if VM_TRACE
        return trace_ != nullptr;
#else
        return false;
#endif
    }

    void dump() {
#if VM_TRACE
        if (trace_) trace_->dump(time_ * 2 + (top_->clk ? 1 : 0));
#endif
    }

    Dram& dram_;
    std::unique_ptr<Vtop> top_;
#if VM_TRACE
    std::unique_ptr<VerilatedFstC> trace_;
#endif
    size_t bus_ = 0;
    uint64_t time_ = 0, cycles_ = 0, loop_cycles_ = 0, loop_ns_ = 0, loop_cpu_ns_ = 0;
    LiteSample lite_sample_{};
    std::ostream* retire_log_ = nullptr;
};

std::vector<uint8_t> read_file(const std::string& path, size_t size) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::cerr << "harness: cannot read " << path << "\n";
        std::exit(2);
    }
    std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), {});
    if (data.size() > size) {
        std::cerr << "harness: DRAM image larger than the DRAM\n";
        std::exit(2);
    }
    data.resize(size, 0);
    return data;
}

}  // namespace

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    if (argc < 7) {
        std::cerr << "usage: harness DRAM_IMAGE DRAM_BYTES LATENCY BEAT_INTERVAL "
                     "MAX_OUTSTANDING SCRIPT [TRACE.fst]\n";
        return 2;
    }
    Dram dram(read_file(argv[1], std::strtoull(argv[2], nullptr, 0)), Harness::bus_bytes(),
              std::strtoull(argv[3], nullptr, 0), std::strtoull(argv[4], nullptr, 0),
              std::strtoull(argv[5], nullptr, 0));
    Harness harness(dram, argc > 7 ? argv[7] : nullptr);
    std::ifstream script(argv[6]);
    if (!script) {
        std::cerr << "harness: cannot read script " << argv[6] << "\n";
        return 2;
    }
    std::ostringstream json;
    json << "{";
    bool first = true;
    auto field = [&](const std::string& name, long long value) {
        json << (first ? "" : ", ") << "\"" << name << "\": " << value;
        first = false;
    };
    std::ofstream retire_file;
    std::string line;
    while (std::getline(script, line)) {
        std::istringstream words(line);
        std::string cmd;
        if (!(words >> cmd)) continue;
        if (cmd == "write") {
            uint64_t addr, value;
            words >> addr >> value;
            harness.lite_write(static_cast<uint32_t>(addr), static_cast<uint32_t>(value));
        } else if (cmd == "read") {
            std::string name;
            uint64_t addr;
            words >> name >> addr;
            field(name, harness.lite_read(static_cast<uint32_t>(addr)));
        } else if (cmd == "wait_irq") {
            std::string name;
            uint64_t max_cycles;
            words >> name >> max_cycles;
            field(name, harness.wait_irq(max_cycles));
        } else if (cmd == "dump") {
            uint64_t addr, length;
            std::string path;
            words >> addr >> length >> path;
            std::ofstream out(path, std::ios::binary);
            out.write(reinterpret_cast<const char*>(dram.memory().data() + addr),
                      static_cast<std::streamsize>(length));
        } else if (cmd == "retire_trace") {
            std::string path;
            words >> path;
            retire_file.open(path);
            harness.log_retirements(&retire_file);
        } else {
            std::cerr << "harness: unknown script command " << cmd << "\n";
            return 2;
        }
    }
    field("harness_cycles", static_cast<long long>(harness.cycles()));
    field("dram_read_bytes", static_cast<long long>(dram.read_bytes()));
    field("dram_write_bytes", static_cast<long long>(dram.write_bytes()));
    field("loop_cycles", static_cast<long long>(harness.loop_cycles()));
    field("loop_ns", static_cast<long long>(harness.loop_ns()));
    field("loop_cpu_ns", static_cast<long long>(harness.loop_cpu_ns()));
    json << "}";
    std::cout << json.str() << std::endl;
    return 0;
}
