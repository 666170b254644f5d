// `postgres_for_tests start|stop DIR`: the ctest fixture that gives the scale-out
// tests one PostgreSQL server for the whole run (see postgres_server.h).
#include <cstdio>
#include <string>

#include "tests/support/postgres_server.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: postgres_for_tests start|stop DIR\n");
    return 2;
  }
  const std::string verb = argv[1];
  // A server an aborted run left behind is stopped first.
  if (verb == "start") (void)dockyard::testing::StopPostgres(argv[2]);
  absl::Status st = verb == "start"  ? dockyard::testing::StartPostgres(argv[2])
                    : verb == "stop" ? dockyard::testing::StopPostgres(argv[2])
                                     : absl::InvalidArgumentError("unknown verb " + verb);
  if (!st.ok()) {
    std::fprintf(stderr, "postgres_for_tests %s: %s\n", verb.c_str(), std::string(st.message()).c_str());
    return 1;
  }
  std::printf("postgres_for_tests %s %s: ok\n", verb.c_str(), argv[2]);
  return 0;
}
