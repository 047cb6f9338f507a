// Every output: stderr progress lines, the stdout table and summary, and the
// JSON, CSV and Markdown files.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "anchors.h"
#include "metrics.h"
#include "options.h"
#include "results.h"
#include "timing.h"

namespace bench {

struct DeviceDescription {
  std::string name;
  int sm_major = 0, sm_minor = 0, sm_count = 0;
  size_t l2_bytes = 0;
  bool moegemm_supported = false;
};

struct Report {
  std::string date;  // UTC, ISO 8601: when the run started
  DeviceDescription device;
  Ceilings ceilings;
  const Anchors* anchors = nullptr;  // loaded anchors file, if any
  const Options* options = nullptr;
  std::vector<Row> rows;
  std::vector<std::string> skipped;  // problems that could not be set up (e.g. out of memory)
  std::string fatal_error;           // the run stopped early
};

void print_ceilings(FILE* f, const Report& report);
void print_progress(FILE* f, const Row& row, size_t index, size_t total);
void print_table(FILE* f, const Report& report);
void print_summary(FILE* f, const Report& report);

// Each returns false, with a message on stderr, when the file cannot be written.
bool write_json(const std::string& path, const Report& report);  // report_json.cpp
bool write_csv(const std::string& path, const Report& report);
bool write_markdown(const std::string& path, const Report& report);

// For the writers: fopen / fclose with the error message.
FILE* open_output(const std::string& path);
bool close_output(FILE* f, const std::string& path);

}  // namespace bench
