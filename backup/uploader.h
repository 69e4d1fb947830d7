// Stores blobs: keyed id, dedup against the index and against blobs stored in
// this run, zstd, sealing into per-thread packs, and a finisher thread that
// makes full packs durable (fdatasync + rename). Used by backup and prune.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "backup/repository.h"

namespace dlc::backup {

class Uploader {
 public:
  // dedup_index: skip blobs the index already has (backup); prune repacks
  // blobs that are indexed elsewhere, so it passes false.
  explicit Uploader(Repository& repo, bool dedup_index = true);
  ~Uploader();
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  // Per-thread state: its own pack and zstd context.
  struct Worker {
    Worker();
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;
    std::unique_ptr<PackWriter> pack;
    void* cctx;  // ZSTD_CCtx
    Bytes buf, sample;
  };

  // Thread-safe (one Worker per thread). Returns the blob id.
  BlobId store(Worker& w, BlobType type, crypto::ByteView data);
  // Hands the worker's open pack to the finisher.
  void flush(Worker& w);
  // Waits for every submitted pack; returns them (rethrows a finisher error).
  std::vector<PackInfo> wait_all();
  void check_error();

  std::atomic<std::uint64_t> blobs_new{0}, blobs_known{0}, bytes_new_raw{0}, bytes_new_stored{0};

 private:
  void finisher_loop();
  void submit(std::unique_ptr<PackWriter> pack);
  bool worth_compressing(Worker& w, crypto::ByteView data);

  Repository& repo_;
  bool dedup_index_;
  std::mutex claim_mu_;
  std::unordered_set<BlobId, BlobIdHash> claimed_;

  std::mutex fin_mu_;
  std::condition_variable fin_cv_;
  std::deque<std::unique_ptr<PackWriter>> fin_queue_;
  std::vector<PackInfo> done_;
  std::size_t in_flight_ = 0;
  bool fin_closed_ = false;
  std::exception_ptr error_;
  std::thread finisher_;
};

}  // namespace dlc::backup
