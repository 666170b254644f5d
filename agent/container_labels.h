// Names of the labels Dockyard puts on the Docker objects it creates, so an agent
// finds its own after a restart (several agents may share an engine).
#pragma once

namespace dockyard {

inline constexpr char kAgentLabel[] = "dockyard.agent";
inline constexpr char kRunLabel[] = "dockyard.run";
inline constexpr char kStageLabel[] = "dockyard.stage";
inline constexpr char kAttemptLabel[] = "dockyard.attempt";
// What a container of an attempt is: absent (or "stage") for the stage's own; "pod"
// for the idle holder of the attempt's network namespace; "service" for a service,
// whose name is under kServiceLabel.
inline constexpr char kRoleLabel[] = "dockyard.role";
inline constexpr char kServiceLabel[] = "dockyard.service";

}  // namespace dockyard
