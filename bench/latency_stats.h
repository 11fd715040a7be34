// Latency samples and their percentiles, shared by the benchmark programs in bench/. A percentile
// is the nearest-rank one (the smallest sample with at least p% of the samples at or below it), so
// p100 is the maximum and a reported figure is always a latency that really happened.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace schakel::bench {

struct Summary {
  std::size_t count = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double p999 = 0;
  double max = 0;
  double mean = 0;
};

// The nearest-rank percentile `p` (0 < p <= 100) of `sorted` (ascending); 0 for no samples.
double Percentile(const std::vector<double>& sorted, double p);

// Sorts `samples` and summarises them.
Summary Summarise(std::vector<double>& samples);

// {"count":…,"p50":…,…} with the values as they are (the caller picks the unit).
std::string ToJson(const Summary& summary);

}  // namespace schakel::bench
