#include "anchors.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string_view>

namespace bench {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Just enough JSON for this file: one flat object per line whose values are
// numbers, null, true/false, strings or arrays of numbers.
struct Value {
  enum Kind { kNull, kBool, kNumber, kString, kArray } kind = kNull;
  double number = 0;
  std::string text;
  std::vector<double> array;
};

class LineParser {
 public:
  explicit LineParser(const std::string& line) : s_(line) {}

  std::map<std::string, Value> object() {
    std::map<std::string, Value> fields;
    expect('{');
    if (eat('}')) return fields;
    do {
      std::string key = string();
      expect(':');
      fields[key] = value();
    } while (eat(','));
    expect('}');
    skip_space();
    if (i_ != s_.size()) error("trailing characters");
    return fields;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    throw Error("column " + std::to_string(i_ + 1) + ": " + what);
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool eat(char c) {
    skip_space();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) error(std::string("expected '") + c + "'");
  }
  bool word(const char* w) {
    skip_space();
    const std::string_view rest(s_.data() + i_, s_.size() - i_);
    const std::string_view target(w);
    if (rest.substr(0, target.size()) != target) return false;
    i_ += target.size();
    return true;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c == '\\') {
        if (i_ >= s_.size()) break;
        const char e = s_[i_++];
        switch (e) {
          case 'n':
            c = '\n';
            break;
          case 't':
            c = '\t';
            break;
          case 'r':
            c = '\r';
            break;
          case 'b':
            c = '\b';
            break;
          case 'f':
            c = '\f';
            break;
          case 'u':  // keep the text legible; non-ASCII code points become '?'
            if (i_ + 4 > s_.size()) error("bad \\u escape");
            c = static_cast<char>(std::strtol(s_.substr(i_, 4).c_str(), nullptr, 16));
            if (static_cast<unsigned char>(c) >= 0x80 || c == 0) c = '?';
            i_ += 4;
            break;
          default:
            c = e;  // \" \\ \/
        }
      }
      out += c;
    }
    expect('"');
    return out;
  }
  double number() {
    skip_space();
    const char* begin = s_.c_str() + i_;
    char* end = nullptr;
    const double v = std::strtod(begin, &end);
    if (end == begin) error("expected a value");
    i_ += static_cast<size_t>(end - begin);
    return v;
  }
  Value value() {
    Value v;
    skip_space();
    if (word("null")) return v;
    for (const bool b : {true, false}) {
      if (word(b ? "true" : "false")) {
        v.kind = Value::kBool;
        v.number = b ? 1 : 0;
        return v;
      }
    }
    if (i_ < s_.size() && s_[i_] == '"') {
      v.kind = Value::kString;
      v.text = string();
      return v;
    }
    if (eat('[')) {
      v.kind = Value::kArray;
      if (eat(']')) return v;
      do v.array.push_back(number());
      while (eat(','));
      expect(']');
      return v;
    }
    v.kind = Value::kNumber;
    v.number = number();
    return v;
  }

  const std::string& s_;
  size_t i_ = 0;
};

const Value* find(const std::map<std::string, Value>& f, const char* key, Value::Kind kind) {
  auto it = f.find(key);
  if (it == f.end() || it->second.kind != kind) return nullptr;
  return &it->second;
}

int64_t to_int(double v, const char* what) {
  if (!(v >= 0) || v > 9.0e15 || std::floor(v) != v)
    throw Error(std::string(what) + ": not a non-negative integer");
  return static_cast<int64_t>(v);
}

double number_or_nan(const std::map<std::string, Value>& f, const char* key) {
  const Value* v = find(f, key, Value::kNumber);
  return v != nullptr ? v->number : kNaN;
}

AnchorRow parse_row(const std::map<std::string, Value>& f) {
  AnchorRow r;
  const Value* set = find(f, "set", Value::kString);
  const Value* out = find(f, "out", Value::kString);
  const Value* splits = find(f, "splits", Value::kArray);
  const Value* g = find(f, "g", Value::kNumber);
  const Value* m = find(f, "m", Value::kNumber);
  const Value* n = find(f, "n", Value::kNumber);
  if (!set || !out || !splits || !g || !m || !n) throw Error("needs set, g, m, n, out and splits");
  r.set = set->text;
  r.g = static_cast<int>(to_int(g->number, "g"));
  r.m = to_int(m->number, "m");
  r.n = to_int(n->number, "n");
  if (out->text == "fp32")
    r.out = OutDtype::kFp32;
  else if (out->text == "bf16")
    r.out = OutDtype::kBf16;
  else
    throw Error("out: \"" + out->text + "\" is neither fp32 nor bf16");
  for (double k : splits->array) r.splits.push_back(to_int(k, "splits"));
  if (r.g < 1 || static_cast<size_t>(r.g) != r.splits.size())
    throw Error("splits: " + std::to_string(r.splits.size()) + " sizes for g = " + std::to_string(r.g));
  for (const auto& [key, v] : f)
    if (v.kind == Value::kNumber && key != "g" && key != "m" && key != "n") r.values[key] = v.number;
  return r;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

double min_with_suffix(const std::map<std::string, double>& values, const std::string& suffix) {
  double best = kNaN;
  for (const auto& [key, v] : values)
    if (ends_with(key, suffix) && !(v >= best)) best = v;  // NaN-safe min
  return best;
}

}  // namespace

double AnchorRow::value(const std::string& key) const {
  auto it = values.find(key);
  return it == values.end() ? kNaN : it->second;
}
double AnchorRow::best_eager_us() const { return min_with_suffix(values, "_eager"); }
double AnchorRow::best_graph_us() const { return min_with_suffix(values, "_graph"); }

const std::vector<std::string>& anchor_columns() {
  static const std::vector<std::string> columns = {"cublas_multistream4_eager", "quack_varlen_k_eager",
                                                   "quack_varlen_k_graph", "torch_grouped_mm_eager",
                                                   "best_peer_us"};
  return columns;
}

bool load_anchors(const std::string& path, Anchors* anchors, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot open " + path;
    return false;
  }
  Anchors a;
  a.path = path;
  std::string line;
  int line_no = 0;
  bool header = true;
  try {
    while (std::getline(in, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::map<std::string, Value> fields = LineParser(line).object();
      if (header) {  // the first line: ceilings of the reference run
        header = false;
        a.copy_TBps = number_or_nan(fields, "copy_TBps");
        a.gemm_TFLOPs = number_or_nan(fields, "gemm_TFLOPs");
        if (const Value* note = find(fields, "note", Value::kString)) a.note = note->text;
        if (find(fields, "splits", Value::kArray) == nullptr) continue;
        // A file without a ceilings line: treat the first line as a shape.
      }
      a.rows.push_back(parse_row(fields));
    }
  } catch (const Error& e) {
    *error = path + ":" + std::to_string(line_no) + ": " + e.what();
    return false;
  }
  if (a.rows.empty()) {
    *error = path + ": no shapes";
    return false;
  }
  *anchors = std::move(a);
  return true;
}

}  // namespace bench
