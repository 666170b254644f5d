// The scheduler's cache bookkeeping: which agent holds a run's latest snapshot,
// what each succeeded stage left, each key's latest snapshot and its eviction.
#include "controller/scheduler.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace dockyard {

std::optional<std::string> Scheduler::CacheHolderOf(const RunEntry& run, const StageEntry& stage) const {
  for (const v1::CacheMount& cache : stage.spec.caches()) {
    auto it = run.cache_agent.find(cache.name());
    if (it != run.cache_agent.end()) return it->second;
  }
  return std::nullopt;
}

void Scheduler::RecordCaches(RunEntry& run, StageEntry& stage, const std::string& agent,
                             const v1::StageStatus& status) {
  for (const v1::CacheDigests& reported : status.caches()) {
    for (v1::CacheDigests& digests : *stage.info.mutable_caches()) {
      if (digests.name() != reported.name()) continue;
      digests.set_produced(reported.produced());
      digests.set_bytes(reported.bytes());
      digests.set_files(reported.files());
    }
    for (const v1::CacheMount& mount : stage.spec.caches()) {
      if (mount.name() != reported.name() || mount.read_only()) continue;
      run.cache_snapshot[mount.name()] = reported.produced();
      run.cache_agent[mount.name()] = agent;
      run.cache_source[mount.name()] =
          absl::StrCat("from stage ", stage.spec.name(), ", attempt ", status.stage().attempt(), " on ", agent);
      Touch(run);
    }
  }
}

void Scheduler::PublishKeyedCaches(const RunEntry& run, absl::Time now) {
  for (const v1::CacheSpec& cache : run.pipeline.caches()) {
    auto snapshot = run.cache_snapshot.find(cache.name());
    const std::string id = absl::StrCat(cache.name(), ".", cache.key());
    if (cache.key().empty() || snapshot == run.cache_snapshot.end() || run.evicted_keys.count(id) != 0) continue;
    auto holder = run.cache_agent.find(cache.name());
    KeyedSnapshot keyed{snapshot->second, holder == run.cache_agent.end() ? "" : holder->second,
                        absl::StrCat("key ", cache.key(), ", from run ", run.run.id())};
    keyed.last_used = now;
    keyed.run_id = run.run.id();
    for (const StageEntry& stage : run.stages) {
      for (const v1::CacheDigests& digests : stage.info.caches()) {
        if (digests.name() == cache.name() && digests.produced() == keyed.digest) {
          keyed.bytes = digests.bytes();
          keyed.files = digests.files();
        }
      }
    }
    // Runs racing on one key: the last to succeed is the key's latest, whole.
    keyed_[id] = std::move(keyed);
  }
}

std::vector<v1::CacheInfo> Scheduler::Caches() const {
  std::vector<v1::CacheInfo> out;
  for (const auto& [id, keyed] : keyed_) {
    v1::CacheInfo& info = out.emplace_back();
    info.set_cache(id.substr(0, id.find('.')));
    info.set_key(id.substr(id.find('.') + 1));
    info.set_snapshot(keyed.digest);
    info.set_bytes(keyed.bytes);
    info.set_files(keyed.files);
    info.set_last_used_unix_ms(absl::ToUnixMillis(keyed.last_used));
    info.set_holder(keyed.holder);
    info.set_source(keyed.source);
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.last_used_unix_ms() > b.last_used_unix_ms(); });
  return out;
}

std::vector<v1::CacheInfo> Scheduler::EvictCaches(int64_t max_bytes) {
  std::vector<v1::CacheInfo> all = Caches();  // most recent first
  int64_t total = 0;
  for (const v1::CacheInfo& info : all) total += info.bytes();
  std::vector<v1::CacheInfo> evicted;
  while (total > max_bytes && !all.empty()) {
    const std::string id = absl::StrCat(all.back().cache(), ".", all.back().key());
    // Remembered with the run that left it, so a restart does not bring it back.
    if (auto run = runs_.find(keyed_[id].run_id); run != runs_.end()) {
      run->second.evicted_keys.insert(id);
      Touch(run->second);
    }
    evicted.push_back(all.back());
    total -= all.back().bytes();
    keyed_.erase(id);
    all.pop_back();
  }
  return evicted;
}

std::set<std::string> Scheduler::LiveCacheSnapshots() const {
  std::set<std::string> live;
  for (const auto& [id, keyed] : keyed_) live.insert(keyed.digest);
  for (const auto& [id, run] : runs_) {
    if (run.run.state() != v1::RUN_QUEUED && run.run.state() != v1::RUN_RUNNING) continue;
    for (const auto& [name, digest] : run.cache_snapshot) live.insert(digest);
    for (const StageEntry& stage : run.stages) {
      for (const v1::CacheDigests& digests : stage.info.caches()) {
        live.insert(digests.consumed());
        live.insert(digests.produced());
      }
    }
  }
  live.erase("");
  return live;
}

}  // namespace dockyard
