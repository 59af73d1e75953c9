// broken_chunk_line: a complete chunk line that breaks the grammar is caught (so the session can
// answer 400 at once), a valid or incomplete one is not (issue 18, defect 7).
#include <gtest/gtest.h>

#include "server/http/chunk_line.hpp"

namespace {

using pushwire::server::broken_chunk_line;

TEST(ChunkLine, ValidOrIncompleteLinesAreLeftToTheParser) {
  for (const char* ok : {"5\r\nhello", "\r\n5\r\n", "1e;a=b\r\n", "5;a=\"x y\"\r\n", "5;a=\"\\\"\"\r\n", "5 ;a\r\n",
                         "5;a;b=c\r\n", "5; a = b\r\n", "0\r\nTrailer: x\r\n", "5;a=\"x", "5;a=\"x\r", "fff"})
    EXPECT_FALSE(broken_chunk_line(ok)) << ok;
}

TEST(ChunkLine, CompleteLinesThatCanNeverParseAreCaught) {
  for (const char* bad : {"5;a=\"x\r\nhello\r\n", "\r\n5;a=\"x\r\n", "0;a=\"x\r\n\r\n", "zz\r\n", "\r\n\r\n", "5;=x\r\n",
                          "5;a=\r\n", "5 \r\n", "5;a \r\n", "5;a=\"x\x01\"\r\n", "5;a=b c\r\n", "5x\r\n"})
    EXPECT_TRUE(broken_chunk_line(bad)) << bad;
}

}  // namespace
