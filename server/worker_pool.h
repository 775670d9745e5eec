// A few threads that run queued tasks, for the rare work of an asynchronous
// gRPC handler that would otherwise block the thread it runs on (waiting
// for a leader to be elected, reading a large range).
//
// Thread safety: Run may be called from any thread. The destructor runs
// what is still queued, then joins the threads.
#ifndef ARBITER_SERVER_WORKER_POOL_H_
#define ARBITER_SERVER_WORKER_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/thread_name.h"

namespace arbiter::server {

class WorkerPool {
 public:
  // REQUIRES: threads > 0.
  explicit WorkerPool(int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        SetThreadName("worker");
        Work();
      });
    }
  }
  ~WorkerPool() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    for (std::thread& t : threads_) t.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Run(std::function<void()> task) {
    absl::MutexLock l(&mu_);
    tasks_.push_back(std::move(task));
  }

 private:
  void Work() {
    while (true) {
      std::function<void()> task;
      {
        absl::MutexLock l(&mu_);
        auto ready = [this]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !tasks_.empty(); };
        mu_.Await(absl::Condition(&ready));
        if (tasks_.empty()) return;  // stopping, and nothing left to run
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace arbiter::server

#endif  // ARBITER_SERVER_WORKER_POOL_H_
