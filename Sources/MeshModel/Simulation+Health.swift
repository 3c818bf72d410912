//===----------------------------------------------------------------------===//
// meshsim — MeshModel
//===----------------------------------------------------------------------===//

import Balancers
import Health
import Reports
import SharedModel
import SimCore
import SimKernel
import SimRandom
import Spec

// Health checks (Envoy active health checking, HAProxy `check`), passive health (nginx `max_fails`, HAProxy
// `observe` with `error-limit`) and zone-aware routing on call edges.
//
// A health check is modelled as a probe of the replica's health endpoint, sent from the caller's zone: it does not
// wait for a worker or in the queue, but it crosses the network both ways (its own draws of the link delays), it
// waits out a stop-the-world pause, a replica that is not serving refuses it (a failure after `refused_cost`), it
// fails with the replica's current error probability, and it times out when the answer would come later than the
// check's timeout or a partition loses it.

extension Simulation {
    /// Schedules the first health check of every replica of the edge's target (each is due at the start).
    mutating func scheduleFirstHealthChecks(edge e: Int) {
        for host in edges[e].checking.indices {
            if let due = edges[e].activeCheck?.nextCheckDue(host: host) {
                schedule(.healthCheck(edge: Int32(e), host: Int32(host), checker: 0), at: due.nanoseconds)
            }
            if let due = edges[e].haproxy?.nextCheckDue(host: host) {
                schedule(.healthCheck(edge: Int32(e), host: Int32(host), checker: 1), at: due.nanoseconds)
            }
        }
    }

    /// A health check is due: unless one is in flight or it is not due yet (the schedule moved), probe the replica
    /// and schedule the result.
    mutating func startHealthCheck(edge e: Int, host: Int, checker: UInt8) {
        let bit: UInt8 = checker == 0 ? 1 : 2
        guard edges[e].checking.indices.contains(host), edges[e].checking[host] & bit == 0 else { return }
        let due: SimInstant?
        let timeout: SimDuration?
        if checker == 0 {
            due = edges[e].activeCheck?.nextCheckDue(host: host)
            timeout = edges[e].activeCheck?.configuration.timeout
        } else {
            due = edges[e].haproxy?.nextCheckDue(host: host)
            // HAProxy: without `timeout check`, `inter` bounds the whole check.
            timeout = edges[e].haproxy.map { $0.configuration.checkTimeout ?? $0.configuration.inter }
        }
        guard let due, let timeout, due <= queue.now else { return }
        edges[e].checking[host] |= bit
        let replica = serviceFirstReplica[Int(edges[e].target)] + host
        let (result, after) = probe(edge: e, replica: replica, timeout: timeout.nanoseconds)
        schedule(
            .healthCheckDone(edge: Int32(e), host: Int32(host), checker: checker, result: result),
            at: now + after
        )
    }

    /// The result of a health check of `replica` sent now (0 passed, 1 failed, 2 timed out) and when it is known.
    mutating func probe(edge e: Int, replica r: Int, timeout: Int64) -> (result: UInt8, after: Int64) {
        let from = Int(edges[e].checkZone)
        let to = Int(replicas[r].zone)
        let outward = link(from: from, to: to)
        let back = link(from: to, to: from)
        // A partition, dropping or holding, makes the check time out.
        guard !links[outward].partitioned, !links[back].partitioned, links[outward].heldUntil <= now,
            links[back].heldUntil <= now,
            let rng = edges[e].healthRng
        else {
            return (2, timeout)
        }
        let out = checkDelay(from: from, to: to, using: rng)
        guard replicas[r].isServing else {
            let refused = out + refusedCostNs
            return refused > timeout ? (2, timeout) : (1, refused)
        }
        let arrival = now + out
        let pauseWait = replicas[r].machine.pauseWait(at: arrival)
        let failed = replicas[r].errorRate > 0 && rng.bernoulli(replicas[r].errorRate)
        let total = out + pauseWait + checkDelay(from: to, to: from, using: rng)
        if total > timeout { return (2, timeout) }
        return (failed ? 1 : 0, total)
    }

    /// A health check's one-way delay over a link: the link's delay drawn from the checker's stream, plus any
    /// added-latency fault (losses are not modelled for checks).
    private mutating func checkDelay(from: Int, to: Int, using rng: RandomStream) -> Int64 {
        let state = links[link(from: from, to: to)]
        if state.instant { return state.extraDelay }
        return state.spec.delay.sample(using: rng) + state.extraDelay
    }

    /// A health check ended: the checker records it, the edge's view follows a change of health, and the next
    /// check is scheduled.
    mutating func finishHealthCheck(edge e: Int, host: Int, checker: UInt8, result code: UInt8) {
        let bit: UInt8 = checker == 0 ? 1 : 2
        guard edges[e].checking.indices.contains(host) else { return }
        edges[e].checking[host] &= ~bit
        let result: CheckResult = code == 0 ? .passed(responseTime: .zero) : (code == 1 ? .failed : .timedOut)
        if checker == 0 {
            guard edges[e].activeCheck != nil else { return }
            let (event, change, due) = edges[e].recordActiveCheck(host: host, result: result, at: queue.now)
            if let event, case .ejected = event { recorder.count(.ejections, at: now) }
            if case .becameUnhealthy? = change { recorder.count(.ejections, at: now) }
            schedule(.healthCheck(edge: Int32(e), host: Int32(host), checker: checker), at: due.nanoseconds)
        } else {
            guard edges[e].haproxy != nil else { return }
            // The edge applies a change of health to its view; marking a server down counts as an ejection.
            let (change, next) = edges[e].recordHAProxyCheck(host: host, result: result, at: queue.now)
            if case .becameUnhealthy? = change { recorder.count(.ejections, at: now) }
            schedule(.healthCheck(edge: Int32(e), host: Int32(host), checker: checker), at: next.nanoseconds)
        }
    }

    /// nginx's round-robin peer accounting learns that the balancer picked `host`: a peer picked after its
    /// `fail_timeout` is a probe, unavailable again at once until a success clears its failures.
    mutating func nginxSelected(edge e: Int, host: Int) {
        edges[e].nginxSelected(host: host, at: queue.now)
    }

    /// nginx and HAProxy passive health learn one attempt's result on replica `host`.
    mutating func observePassive(edge e: Int, host: Int, result: RequestResult) {
        if edges[e].nginx != nil {
            let (until, fresh) = edges[e].recordNginxPassive(host: host, result: result, at: queue.now)
            // A new unavailability (not one extended by a failure that was still in flight) is an ejection.
            if fresh { recorder.count(.ejections, at: now) }
            if let until { schedule(.healthRecovery(edge: Int32(e)), at: until.nanoseconds) }
        }
        if edges[e].haproxy != nil, let event = edges[e].observeHAProxy(host: host, result: result, at: queue.now) {
            // The edge applied a change of health to its view; marking a server down counts as an ejection.
            if case .becameUnhealthy? = event.transition { recorder.count(.ejections, at: now) }
            if edges[e].haproxy!.configuration.fastinter != nil {
                // `on-error` brought the next check forward.
                schedule(.healthCheck(edge: Int32(e), host: Int32(host), checker: 1), at: event.nextCheck.nanoseconds)
            }
        }
    }
}
