// Package mesoslib is the scheduler's connection to the Mesos master over
// the v1 HTTP scheduler API, built on mesos-go v0.0.11 (controller.Run,
// httpsched, callrules). It subscribes, keeps the subscription alive, and
// turns the event stream into calls on a Handler the consumer provides.
//
// What it guarantees:
//
//   - Subscription. The framework subscribes with the framework ID from a
//     FrameworkIDStore, a positive failover timeout, checkpointing and the
//     PARTITION_AWARE and TASK_KILLING_STATE capabilities. A new framework
//     ID is persisted before anything else happens; a stored ID Mesos no
//     longer accepts makes Run return ErrFrameworkRemoved.
//   - Liveness. A heartbeat watchdog closes a stream on which nothing has
//     arrived for MissedHeartbeats heartbeat intervals; a 403 on any call,
//     a decode error or an ERROR event also ends the subscription. Run
//     then re-subscribes with exponential backoff (SubscribeBackoff up to
//     SubscribeMaxBackoff). A 307 from a non-leading master is followed,
//     and every later call goes to the master that accepted the
//     subscription.
//   - Acknowledgements. An UPDATE carrying a uuid is acknowledged (same
//     agent ID, task ID and uuid) only after Handler.Update returned nil,
//     i.e. after the consumer persisted it. On any other error it is not
//     acknowledged and the agent sends it again later (10 s, 20 s, ... on
//     a real agent). Updates are delivered at least once: retries,
//     re-subscriptions and executor replays all produce duplicates, so
//     Handler.Update must be idempotent.
//   - Asynchronous recording. A Handler that implements AsyncUpdater is
//     handed each update with a done callback and the event stream moves
//     on at once, so the handler can persist many updates together. The
//     ACKNOWLEDGE (or the kill of an unknown task) follows done(nil) (or
//     done(ErrUnknownTask)); any other error, or done after Run returned,
//     sends nothing. These calls are sent by a goroutine of Run, in the
//     order the handler reported them, on the subscription current at
//     that moment, which may be a later one than the update came on: an
//     acknowledgement only says the update is persisted, and an agent
//     ignores one for an update it no longer holds (see runSettle).
//   - Unknown tasks. Handler.Update returns ErrUnknownTask (possibly
//     wrapped) for a task ID the consumer has no record of. mesoslib then
//     acknowledges the update (there is nothing to persist) and, if the
//     task is STAGING, STARTING or RUNNING, KILLs it. Tasks in other states
//     are not killed: terminal ones are gone already, and KILL of an
//     UNREACHABLE or UNKNOWN task only produces another reconciliation
//     answer; if such a task comes back RUNNING it is killed then.
//   - Reconciliation. After every SUBSCRIBED, every task the TaskLister
//     returns is reconciled explicitly; tasks without an answer (Mesos
//     stays silent for tasks on agents that have not re-registered after a
//     master failover) are asked about again with backoff until each has
//     answered. Then one implicit reconciliation follows, and another every
//     ReconcileInterval while subscribed.
//   - Calls. Accept, Decline, Revive, Suppress, Kill, Shutdown, Reconcile,
//     Message and Teardown fail at once with ErrNotConnected while no
//     subscription is active; a 403 from the master also comes back as
//     ErrNotConnected (and ends the subscription). A 202 means only that
//     Mesos took the call: outcomes arrive as events. UPDATE_FRAMEWORK is
//     not offered: the FrameworkInfo comes from Config and is sent again
//     with every subscription.
//
// Wiring, in a composition root:
//
//	client, err := mesoslib.New(cfg, frameworkIDs, tasks, handler)
//	...
//	go func() { errc <- client.Run(ctx) }() // nil once ctx ends
//
// The handler usually forwards offers to the offer manager and records
// updates in the state store; the offer manager calls client.Accept and
// friends. Run never tears the framework down on its own: when it returns,
// Mesos keeps the tasks running for FailoverTimeout, waiting for the next
// scheduler to subscribe with the stored ID.
//
// Logging (glog): -v=0 subscriptions and disconnections, -v=1 decisions
// (reconciliation rounds, kills of unknown tasks, unacknowledged updates),
// -v=2 every event and call.
package mesoslib
