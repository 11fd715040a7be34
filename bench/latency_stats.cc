#include "bench/latency_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace schakel::bench {

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  // Rank ceil(p/100 * n), 1-based. The small epsilon keeps p99 of 100 samples at rank 99 when the
  // product comes out as 99.00000000000001.
  const double exact = p / 100.0 * static_cast<double>(sorted.size());
  std::size_t rank = static_cast<std::size_t>(std::ceil(exact - 1e-9));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

Summary Summarise(std::vector<double>& samples) {
  std::sort(samples.begin(), samples.end());
  Summary s;
  s.count = samples.size();
  if (samples.empty()) return s;
  s.p50 = Percentile(samples, 50);
  s.p90 = Percentile(samples, 90);
  s.p99 = Percentile(samples, 99);
  s.p999 = Percentile(samples, 99.9);
  s.max = samples.back();
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(s.count);
  return s;
}

std::string ToJson(const Summary& s) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer,
                "{\"count\":%zu,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"p999\":%.4f,"
                "\"max\":%.4f,\"mean\":%.4f}",
                s.count, s.p50, s.p90, s.p99, s.p999, s.max, s.mean);
  return buffer;
}

}  // namespace schakel::bench
