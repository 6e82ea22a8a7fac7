// Package offermgr matches queued tasks to Mesos offers.
//
// It has two layers:
//
//   - Place, a pure placement engine: offers, demands and a little state in,
//     a Plan out (what to launch where, with concrete ports and the exact
//     resources to take, which offers to decline, and for every task left
//     over a PlacementMetric saying why). No I/O, no clock, seeded
//     randomness, so a decision can be replayed from its inputs.
//   - Manager, the runnable around it: it holds the offers mesoslib delivers,
//     runs one pass whenever offers or work arrive, launches through a
//     Launcher, declines what it cannot use with a refuse filter, suppresses
//     offers while nothing is queued and revives them (rate limited) when
//     work arrives. No offer is held past the pass that received it.
//
// # Placement
//
// The engine follows Nomad's scheduler: small feasibility checks that each
// record a named reason when they reject an agent, cheapest first, then a
// ranker over the agents that passed. The checks are sticky (a relaunched
// ordinal fits only its previous agent until Demand.StickyUntil), spread
// (no two tasks of one instance on one agent) and resources (cpus, mem,
// disk, ports, plus the executor's cpus and mem when the offer's
// executor_ids does not list it). Rejections are counted per demand in a
// PlacementMetric whose Summary reads, for example,
//
//	3 agents: 2 lack mem (need 256, best 128), 1 holds cache1-0 (spread)
//
// Manager keeps the latest one per queued task (WhyNotPlaced, Explain) for
// the REST API and logs it at -v=1 when it changes.
//
// Spread is a hard rule with one, explained, exception. Mesos offers only
// part of the cluster at a time, so "no other agent fits" cannot be known
// in a single pass. A task therefore refuses every agent that runs a
// sibling until it has been queued for Policy.CoLocateAfter (30 s by
// default; agents declined with the 5 s filter are offered again well
// within it). After that, in a pass where still no sibling-free agent fits,
// it may share an agent, preferring the one with the fewest siblings; the
// placement's Reason says so. Before that the metric says when sharing
// becomes possible ("may share an agent from 12:00:30").
//
// The ranker prefers the previous agent, then (when sharing) the fewest
// siblings, then the least-loaded agent: the one that keeps the most
// headroom, counted in copies of the task. Least-loaded rather than
// bin-packing, because stateful tasks are long-lived and memory-bound: a
// spread load limits what one agent failure takes down and leaves room to
// grow, while the fragmentation bin-packing avoids matters little when
// tasks rarely come and go. Agents are visited in a seeded shuffle and at
// most Policy.Candidates feasible ones are compared per task.
//
// Resources are taken from unreserved resources and from resources
// statically reserved for the framework's role, never mixing two
// reservations in one task. Dynamic reservations, persistent volumes, disk
// sources, revocable and shared resources are left alone (declined).
// Taken resources keep the offer's role, reservations and allocation_info.
// Offers of one agent and one allocation role are accepted together, as
// Mesos requires.
//
// # Wiring
//
// The scheduler provides the Manager's dependencies: a TaskQueue (buffer's
// task queue, turned into Demands), a Launcher (Config, record STAGING,
// dequeue, ACCEPT), an OfferCaller (mesoslib's DECLINE, SUPPRESS, REVIVE)
// and RunningTasks (statemgr's live tasks by agent). mesoslib's event
// handlers call Offer, Rescind and Resubscribed.
package offermgr
