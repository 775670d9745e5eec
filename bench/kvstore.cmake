# Benchmarks of the durable storage. raft_log_store_bench measures the fsync
# path: synced RaftLogStore::Save calls on the real disk (a temp dir under
# /tmp), with their p50/p99 latency.
add_executable(raft_log_store_bench raft_log_store_bench.cc)
target_link_libraries(raft_log_store_bench PRIVATE arbiter_kvstore benchmark::benchmark
                      benchmark::benchmark_main)

# The key-value state machine: applied puts per second, and Range of one and
# of 100 keys (also while puts are applied).
add_executable(kv_state_machine_bench kv_state_machine_bench.cc)
target_link_libraries(kv_state_machine_bench PRIVATE arbiter_mvcc benchmark::benchmark
                      benchmark::benchmark_main)
