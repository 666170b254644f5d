#include "common/stage_graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dockyard {
namespace {

using ::testing::ElementsAre;

struct StageDef {
  std::string name;
  std::vector<std::string> needs;
};

// Stages get lines 10, 20, 30, ... unless `with_lines` is false (as over the wire).
v1::Pipeline MakePipeline(const std::vector<StageDef>& stages, bool with_lines = true) {
  v1::Pipeline p;
  p.set_name("p");
  p.set_file("ci.yml");
  int line = 10;
  for (const StageDef& def : stages) {
    v1::Stage* s = p.add_stages();
    s->set_name(def.name);
    for (const std::string& need : def.needs) s->add_needs(need);
    if (with_lines) s->set_line(line);
    line += 10;
  }
  return p;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(StageGraph, TopologicalOrderRespectsNeedsAndKeepsFileOrderForTies) {
  v1::Pipeline p = MakePipeline({{"package", {"test", "lint"}},
                                 {"test", {"build"}},
                                 {"docs", {}},
                                 {"build", {}},
                                 {"lint", {}},
                                 {"deploy", {"package", "docs"}}});
  ASSERT_TRUE(ValidateStageGraph(p).ok());
  absl::StatusOr<std::vector<std::string>> order = TopologicalOrder(p);
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_THAT(*order, ElementsAre("docs", "build", "test", "lint", "package", "deploy"));
}

TEST(StageGraph, IndependentStagesStayInFileOrder) {
  absl::StatusOr<std::vector<std::string>> order =
      TopologicalOrder(MakePipeline({{"c", {}}, {"a", {}}, {"b", {}}}));
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_THAT(*order, ElementsAre("c", "a", "b"));
}

TEST(StageGraph, ReportsCyclePathFromItsEarliestStage) {
  v1::Pipeline p = MakePipeline({{"setup", {}}, {"a", {"setup", "c"}}, {"b", {"a"}}, {"c", {"b"}}});
  absl::Status status = ValidateStageGraph(p);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(status), "ci.yml:20: stage \"a\" is part of a cycle in needs: a -> c -> b -> a");
  EXPECT_EQ(TopologicalOrder(p).status(), status);
}

TEST(StageGraph, ReportsCycleEnteredFromALaterStage) {
  // The search reaches the cycle through "z" first; the report still starts at "a".
  v1::Pipeline p = MakePipeline({{"z", {"b"}}, {"a", {"b"}}, {"b", {"a"}}});
  EXPECT_EQ(Message(ValidateStageGraph(p)),
            "ci.yml:20: stage \"a\" is part of a cycle in needs: a -> b -> a");
}

TEST(StageGraph, ReportsUnknownNeedAtTheNeedingStage) {
  absl::Status status = ValidateStageGraph(MakePipeline({{"build", {}}, {"test", {"biuld"}}}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(status), "ci.yml:20: stage \"test\" needs unknown stage \"biuld\"");
}

TEST(StageGraph, ReportsSelfNeedDuplicateNeedAndDuplicateName) {
  EXPECT_EQ(Message(ValidateStageGraph(MakePipeline({{"a", {"a"}}}))),
            "ci.yml:10: stage \"a\" needs itself");
  EXPECT_EQ(Message(ValidateStageGraph(MakePipeline({{"a", {}}, {"b", {"a", "a"}}}))),
            "ci.yml:20: stage \"b\" lists \"a\" twice in needs");
  EXPECT_EQ(Message(ValidateStageGraph(MakePipeline({{"a", {}}, {"b", {}}, {"a", {}}}))),
            "ci.yml:30: duplicate stage name \"a\" (first defined at line 10)");
  EXPECT_EQ(Message(ValidateStageGraph(MakePipeline({{"a", {}}, {"", {}}}))),
            "ci.yml:20: stage #2 has no name");
}

TEST(StageGraph, OmitsFileAndLineForStagesWithoutLines) {
  EXPECT_EQ(Message(ValidateStageGraph(MakePipeline({{"a", {"b"}}, {"b", {"a"}}}, false))),
            "pipeline: stage \"a\" is part of a cycle in needs: a -> b -> a");
  EXPECT_EQ(Message(ValidateStageGraph(MakePipeline({{"a", {"x"}}}, false))),
            "pipeline: stage \"a\" needs unknown stage \"x\"");
  EXPECT_EQ(Message(ValidateStageGraph(MakePipeline({{"a", {}}, {"a", {}}}, false))),
            "pipeline: duplicate stage name \"a\" (first defined at stage #1)");
}

TEST(StageGraph, HandlesLongChainsWithoutDeepRecursion) {
  // A controller validates untrusted pipelines: a long chain must not exhaust the stack.
  std::vector<StageDef> stages;
  constexpr int kStages = 200'000;
  for (int i = 0; i < kStages; ++i) {
    stages.push_back({"s" + std::to_string(i), {}});
    if (i + 1 < kStages) stages.back().needs.push_back("s" + std::to_string(i + 1));
  }
  absl::StatusOr<std::vector<std::string>> order = TopologicalOrder(MakePipeline(stages));
  ASSERT_TRUE(order.ok()) << order.status();
  ASSERT_EQ(order->size(), static_cast<size_t>(kStages));
  EXPECT_EQ(order->front(), "s199999");
  EXPECT_EQ(order->back(), "s0");
}

}  // namespace
}  // namespace dockyard
