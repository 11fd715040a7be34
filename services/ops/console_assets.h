// The console's static files (services/ops/console/), compiled into the ops service.
#pragma once

#include <string_view>
#include <vector>

namespace schakel::ops {

struct ConsoleAsset {
  std::string_view path;  // e.g. "/index.html"
  std::string_view content;
};

const std::vector<ConsoleAsset>& ConsoleAssets();

}  // namespace schakel::ops
