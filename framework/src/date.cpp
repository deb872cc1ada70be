// The Date cache is thread_local rather than shared: a shared cache needs a
// lock or a seqlock that every request's read would touch across cores,
// while a per-thread one costs one clock read and one compare. thread_local
// is per thread, not per fiber (fibers migrate), which is fine here because
// date_now() never reaches a scheduling point; the contract in date.hpp
// keeps callers from holding the view across one.
#include "date.hpp"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace spindle::http::detail {
namespace {

constexpr std::size_t kLength = 29;  // "Sun, 06 Nov 1994 08:49:37 GMT"

struct DateCache {
  std::int64_t second = -1;  // the Unix second `text` shows; -1: none yet
  char text[kLength];
};

// std::chrono's civil calendar rather than gmtime_r, which takes glibc's
// time zone lock.
void format(std::int64_t unix_seconds, char* out) noexcept {
  using namespace std::chrono;
  static constexpr std::string_view kDays = "SunMonTueWedThuFriSat";
  static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  sys_seconds t{seconds(unix_seconds)};
  sys_days day = floor<days>(t);
  year_month_day ymd{day};
  hh_mm_ss hms{t - day};
  auto put = [&out](std::string_view s) { out = std::copy(s.begin(), s.end(), out); };
  auto put2 = [&out](auto v) {
    *out++ = static_cast<char>('0' + static_cast<unsigned>(v) / 10 % 10);
    *out++ = static_cast<char>('0' + static_cast<unsigned>(v) % 10);
  };
  put(kDays.substr(3 * weekday(day).c_encoding(), 3));
  put(", ");
  put2(static_cast<unsigned>(ymd.day()));
  put(" ");
  put(kMonths.substr(3 * (static_cast<unsigned>(ymd.month()) - 1), 3));
  put(" ");
  int year = static_cast<int>(ymd.year());  // four digits until 9999
  put2(year / 100);
  put2(year % 100);
  put(" ");
  put2(hms.hours().count());
  put(":");
  put2(hms.minutes().count());
  put(":");
  put2(hms.seconds().count());
  put(" GMT");
}

}  // namespace

// noinline: inlined (LTO) into a caller that parks between two calls, the
// compiler could reuse the first call's thread-local address on the thread
// the fiber migrated to.
[[gnu::noinline]] std::string_view date_now() noexcept {
  thread_local DateCache cache;
  timespec ts;
  // Coarse: a vDSO read of the last tick, no syscall; a tick (1-4 ms) of
  // lag at a second's edge does not matter to a Date header.
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec != cache.second) {
    format(ts.tv_sec, cache.text);
    cache.second = ts.tv_sec;
  }
  return {cache.text, kLength};
}

}  // namespace spindle::http::detail
