"""Run SCALE-Sim once; executed by the interpreter of its own venv (bench/venv-scalesim), so it
imports nothing of Systolica.

    python bench/scalesim_runner.py TOPOLOGY.csv CONFIG.cfg LAYOUT.csv OUT_DIR [--compute-only]

Prints one JSON line: the wall and CPU seconds of SCALE-Sim's run (its own work, not this
process's start-up; CPU time stays meaningful on a loaded machine) and either the path of
COMPUTE_REPORT.csv (a full run) or, with --compute-only, the layers' compute cycles and
utilization. Traces are not written (save_disk_space=True): SCALE-Sim's command line ignores its
own `-s N` flag and would write per-cycle traces of gigabytes.

--compute-only runs SCALE-Sim's compute model (operand, prefetch and demand matrices of
single_layer_sim.run, steps 1.1-1.4) and skips its cycle-by-cycle memory simulation, which takes
hours on VGG-16. In bandwidth mode CALC the memory simulation adds no stall, and its compute
cycles are the demand matrices' rows minus one (checked on SCALE-Sim's AlexNet: 3,823,825 on
16x16 both ways).
"""

import contextlib
import json
import os
import sys
import time


def compute_only(topology: str, config: str, layout: str) -> list[dict]:
    from scalesim.layout_utils import layouts
    from scalesim.scale_config import scale_config
    from scalesim.single_layer_sim import single_layer_sim
    from scalesim.topology_utils import topologies

    conf, topo, lay = scale_config(), topologies(), layouts()
    conf.read_conf_file(config)
    topo.load_arrays(topofile=topology)
    lay.load_arrays(layoutfile=layout)
    rows, columns = conf.get_array_dims()
    layers = []
    for i in range(topo.get_num_layers()):
        sim = single_layer_sim()
        sim.set_params(layer_id=i, config_obj=conf, topology_obj=topo, layout_obj=lay,
                       verbose=False)
        ops = sim.op_mat_obj
        ifmap, filters, ofmap = (ops.get_ifmap_matrix()[1], ops.get_filter_matrix()[1],
                                 ops.get_ofmap_matrix()[1])
        sim.compute_system.set_params(
            config_obj=conf, ifmap_op_mat=ifmap, filter_op_mat=filters, ofmap_op_mat=ofmap,
            sparsity_ratio_N=sim.sparsity_ratio_N, sparsity_ratio_M=sim.sparsity_ratio_M,
            ifmap_op_mat_original=ops.ifmap_addr_matrix_original,
            sparsity_filter_array=ops.sparse_filter_array)
        sim.compute_system.get_prefetch_matrices()
        cycles = sim.compute_system.get_demand_matrices()[2].shape[0] - 1
        num_compute = topo.get_layer_num_ofmap_px(i) * topo.get_layer_window_size(i)
        layers.append({"layer": i, "compute_cycles": cycles,
                       "overall_util_pct": 100.0 * num_compute / (cycles * rows * columns)})
    return layers


def main() -> int:
    topology, config, layout, out = sys.argv[1:5]
    only_compute = "--compute-only" in sys.argv[5:]
    start, cpu_start = time.perf_counter(), time.process_time()
    answer = {}
    # SCALE-Sim prints a progress bar per layer to stdout; keep stdout for the JSON line.
    with contextlib.redirect_stdout(sys.stderr):
        if only_compute:
            answer["layers"] = compute_only(topology, config, layout)
        else:
            from scalesim.scale_sim import scalesim

            sim = scalesim(save_disk_space=True, verbose=False, config=config,
                           topology=topology, layout=layout)
            sim.run_scale(top_path=out)
            answer["compute_report"] = os.path.join(out, sim.config.get_run_name(),
                                                    "COMPUTE_REPORT.csv")
    answer["seconds"] = time.perf_counter() - start
    answer["cpu_seconds"] = time.process_time() - cpu_start
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
