#include "spindle/net/error.hpp"

namespace spindle::net {

namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "spindle.net"; }
  std::string message(int e) const override {
    switch (static_cast<Errc>(e)) {
      case Errc::timeout:
        return "deadline exceeded";
      case Errc::closed:
        return "use of closed connection";
      case Errc::canceled:
        return "operation canceled";
      case Errc::eof:
        return "unexpected end of stream";
    }
    return "unknown spindle.net error";
  }
};
}  // namespace

const std::error_category& category() noexcept {
  static const Category c;
  return c;
}

}  // namespace spindle::net
