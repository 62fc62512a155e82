#pragma once
// Expects fn() to throw sat::Error whose message contains every one of `parts`.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "sat/error.hpp"

namespace sat::test {

template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no sat::Error thrown; expected one naming '" << *parts.begin() << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) {
      EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    }
  }
}

template <typename Fn>
void expect_error(Fn&& fn, const std::string& part) {
  expect_error(std::forward<Fn>(fn), {part});
}

}  // namespace sat::test
