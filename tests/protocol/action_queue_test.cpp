#include "protocol/action_queue.hpp"

#include <gtest/gtest.h>

#include <string>

using pushwire::protocol::action_queue;

TEST(ActionQueue, HandsItemsOutInTheOrderTheyCame) {
  action_queue<std::string> q;
  EXPECT_TRUE(q.empty());
  q.push_back("a");
  q.push_back("b");
  EXPECT_EQ(q.take(), "a");
  q.push_back("c");   // pushed while items are still waiting: after them
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.take(), "b");
  EXPECT_EQ(q.take(), "c");
  EXPECT_TRUE(q.empty());
}

// The point of the type: an idle connection's empty queue holds nothing on the heap.
TEST(ActionQueue, GivesItsStorageBackOnceEmpty) {
  action_queue<std::string> q;
  EXPECT_EQ(q.capacity(), 0u);
  for (int i = 0; i < 5; ++i) q.push_back(std::to_string(i));
  EXPECT_GE(q.capacity(), 5u);
  for (int i = 0; i < 4; ++i) q.take();
  EXPECT_GE(q.capacity(), 1u);   // one left: still held
  EXPECT_EQ(q.take(), "4");
  EXPECT_EQ(q.capacity(), 0u);
  q.push_back("again");   // usable after being emptied
  EXPECT_EQ(q.take(), "again");
  EXPECT_EQ(q.capacity(), 0u);
}
