//===----------------------------------------------------------------------===//
// meshsim — MeshModel
//===----------------------------------------------------------------------===//

import Balancers
import Breakers
import DequeModule
import Health
import Limiters
import Reports
import Retries
import SharedModel
import SimCore
import SimKernel
import SimRandom
import Spec

extension Simulation {
    // MARK: - Slabs

    @inline(__always)
    mutating func allocateCall() -> Int {
        if let slot = freeCalls.popLast() { return Int(slot) }
        calls.append(CallState())
        return calls.count - 1
    }

    @inline(__always)
    mutating func freeCall(_ c: Int) {
        calls[c].live = false
        calls[c].generation &+= 1
        freeCalls.append(Int32(c))
    }

    @inline(__always)
    mutating func allocateAttempt() -> Int {
        if let slot = freeAttempts.popLast() { return Int(slot) }
        attempts.append(AttemptState())
        return attempts.count - 1
    }

    @inline(__always)
    mutating func freeAttempt(_ a: Int) {
        attempts[a].phase = .free
        attempts[a].generation &+= 1
        freeAttempts.append(Int32(a))
    }

    // MARK: - Calls

    /// The edge a call from `site` takes for a request with `path` and `host`, or -1 when no route matches.
    ///
    /// - Complexity: O(1) for direct sites and routes (a precomputed table), O(sides) for a split.
    mutating func route(site: CallSite, path: Int16, host: Int16) -> Int32 {
        if site.direct >= 0 { return site.direct }
        if let rng = site.rng {
            let u = rng.uniform()
            return site.splitEdges[site.cumulative.firstIndex { u < $0 } ?? (site.splitEdges.count - 1)]
        }
        return site.routeTable[Int(path) * hostNames.count + Int(host)]
    }

    /// Starts a call on `edge` from a caller in `zone`; `parent` is the calling attempt, or -1 for a client request.
    /// An `edge` of -1 (no route matched) fails the call at once, as a 404.
    mutating func startCall(
        edge: Int32,
        zone: Int32,
        parent: Int32,
        client: Int32,
        user: Int32,
        path: Int16,
        host: Int16
    ) {
        let c = allocateCall()
        calls[c].live = true
        calls[c].edge = edge
        calls[c].callerZone = zone
        calls[c].parent = parent
        calls[c].parentGeneration = parent >= 0 ? attempts[Int(parent)].generation : 0
        calls[c].client = client
        calls[c].user = user
        calls[c].attemptsMade = 0
        calls[c].currentAttempt = -1
        calls[c].start = now
        calls[c].retryHeld = false
        calls[c].outstanding = 0
        calls[c].path = path
        calls[c].host = host
        guard edge >= 0 else {
            finishCall(c, outcome: .failed)
            return
        }
        let policy = edges[Int(edge)].policy
        // Deadline propagation: the earlier of the call's own deadline and the one of the call being served.
        var deadline = policy.deadline.map { Deadline.after($0, from: queue.now) } ?? .none
        if parent >= 0 {
            let served = Int(attempts[Int(parent)].call)
            if calls[served].generation == attempts[Int(parent)].callGeneration {
                deadline = min(deadline, calls[served].deadline)
            }
        }
        calls[c].deadline = deadline
        calls[c].backoff = policy.backoff
        if !edges[Int(edge)].admitCall(at: queue.now) {
            recorder.count(.limiterRejections, at: now)
            finishCall(c, outcome: .rejected)
            return
        }
        if deadline.isExpired(at: queue.now) {
            finishCall(c, outcome: .timedOut)  // nothing left of the inherited deadline: fail fast
            return
        }
        sendAttempt(call: c)
    }

    /// Makes the next attempt of call `c` (a hedge when `hedge`): picks an endpoint, arms the timeout and the
    /// hedging timer, and sends the request.
    mutating func sendAttempt(call c: Int, hedge: Bool = false) {
        let edge = Int(calls[c].edge)
        calls[c].attemptsMade += 1
        recorder.count(.attempts, at: now)
        let isRetry = calls[c].attemptsMade > 1 && !hedge
        if isRetry { recorder.count(.retries, at: now) }
        if hedge { recorder.count(.hedgesSent, at: now) }
        let (admission, opened) = edges[edge].admitAttempt(isRetry: isRetry, at: queue.now)
        if opened { recorder.count(.breakerOpens, at: now) }
        let pool: PoolState
        switch admission {
        case .admitted(let place):
            pool = place
        case .throttled, .breakerRejected:
            // SRE client-side throttling, an open breaker or an Envoy threshold overflow: the attempt fails
            // locally, and is not retried.
            recorder.count(admission == .throttled ? .limiterRejections : .breakerRejections, at: now)
            releaseRetry(c, edge: edge)
            if calls[c].outstanding == 0 { finishCall(c, outcome: .rejected) }
            return
        }
        let a = allocateAttempt()
        attempts[a].call = Int32(c)
        attempts[a].callGeneration = calls[c].generation
        attempts[a].failedChild = false
        attempts[a].stage = 0
        attempts[a].pendingChildren = 0
        attempts[a].breakerHeld = edges[edge].breaker != nil
        attempts[a].pool = pool
        attempts[a].isRetry = isRetry
        attempts[a].permit = nil
        attempts[a].edge = Int32(edge)
        attempts[a].sentAt = now
        attempts[a].isHedge = hedge
        attempts[a].waitedOn = true
        attempts[a].holdsConnection = false
        attempts[a].denied = !edgeDenied.isEmpty && edgeDenied[edge][Int(calls[c].path)]
        attempts[a].replica = -1
        attempts[a].heldByBalancer = false
        calls[c].outstanding += 1
        let number = Int(calls[c].attemptsMade)
        if number <= 8 { calls[c].slots[number - 1] = Int32(a) }
        calls[c].currentAttempt = Int32(a)
        if let hedging = edges[edge].policy.hedging, number < hedging.maxAttempts {
            schedule(
                .hedge(call: Int32(c), generation: calls[c].generation, attemptNumber: Int32(number)),
                at: now + hedging.delay.nanoseconds
            )
        }
        // The attempt's timeout: its per-try timeout, cut short by the call's deadline.
        var timeoutAt: Int64? = edges[edge].timeoutNs > 0 ? now + edges[edge].timeoutNs : nil
        if calls[c].deadline != .none {
            timeoutAt = min(timeoutAt ?? Int64.max, calls[c].deadline.instant.nanoseconds)
        }
        if let timeoutAt {
            let event = MeshEvent.timeout(
                call: Int32(c),
                generation: calls[c].generation,
                attemptNumber: calls[c].attemptsMade
            )
            if edges[edge].timeoutNs > 0, timeoutAt == now + edges[edge].timeoutNs {
                queue.schedule(event, inLane: Int(timeoutLanes[edge]))  // the edge's own timeout: its FIFO lane
            } else {
                schedule(event, at: max(timeoutAt, now))  // cut short by the deadline
            }
        }
        if pool == .pending {
            // Every connection of the Envoy pool is in use: the attempt waits for one (its timeout runs).
            attempts[a].phase = .pending
            edges[edge].pending.append((Int32(a), attempts[a].generation))
            return
        }
        dispatch(a, call: c, edge: edge)
    }

    /// Sends attempt `a` of call `c` on `edge`: picks an endpoint and sends the request to it.
    mutating func dispatch(_ a: Int, call c: Int, edge: Int) {
        let target = Int(edges[edge].target)
        let origin = edges[edge].originService
        let choice = edges[edge].pick(
            at: queue.now,
            callerZone: calls[c].callerZone,
            origin: origin >= 0 ? viewZoneCounts[Int(origin)] : edges[edge].originByZone
        )
        if let choice, edges[edge].nginx != nil { nginxSelected(edge: edge, host: Int(choice)) }
        guard let local = choice else {
            // No endpoint is known: the call fails at once, as a refused connection.
            attempts[a].replica = -1
            attempts[a].heldByBalancer = false
            attempts[a].phase = .answering
            attempts[a].status = .refused
            receive(a)
            return
        }
        let replica = serviceFirstReplica[target] + Int(local)
        attempts[a].replica = Int32(replica)
        attempts[a].phase = .travelling
        attempts[a].sentAt = now
        attempts[a].edge = Int32(edge)
        attempts[a].heldByBalancer = true
        edges[edge].started(replica: local, at: queue.now)
        guard var delay = transit(from: Int(calls[c].callerZone), to: Int(replicas[replica].zone)) else {
            attempts[a].phase = .lost  // lost in a partition: only the timeout can end this attempt
            return
        }
        if security != nil { delay += tlsCost(attempt: a, edge: edge, replica: replica) }
        if delay == 0 {
            arrive(a)
        } else {
            schedule(.deliver(attempt: Int32(a), generation: attempts[a].generation), at: now + delay)
        }
    }

    /// A connection of the edge's Envoy pool was freed: the oldest pending attempts get connections while some are
    /// free. One whose `max_requests` overflows then fails at once, like any breaker refusal (not retried).
    mutating func dispatchPending(edge: Int) {
        while let next = edges[edge].pending.first, edges[edge].breaker?.hasFreeConnection == true {
            _ = edges[edge].pending.popFirst()
            let a = Int(next.attempt)
            guard attempts[a].generation == next.generation, attempts[a].phase == .pending else { continue }
            let c = Int(attempts[a].call)
            if edges[edge].breaker!.promotePending() {
                attempts[a].pool = .connected
                dispatch(a, call: c, edge: edge)
                continue
            }
            recorder.count(.breakerRejections, at: now)
            if attempts[a].isRetry { edges[edge].breaker!.cancel(isRetry: true, pool: .none, at: queue.now) }
            attempts[a].pool = .none
            attempts[a].breakerHeld = false
            attempts[a].waitedOn = false
            freeAttempt(a)
            calls[c].outstanding -= 1
            releaseRetry(c, edge: edge)
            if calls[c].outstanding == 0 { finishCall(c, outcome: .rejected) }
        }
    }

    /// The one-way delay of a message between two zones, or `nil` when the message never arrives: lost to a `drop`
    /// partition, or held by a `hold` partition that lasts to the run's end. A message held by a `hold` partition
    /// leaves when it heals, then takes the link's delay.
    @inline(__always)
    mutating func transit(from: Int, to: Int) -> Int64? {
        let l = link(from: from, to: to)
        if links[l].instant && links[l].extraDelay == 0 && !links[l].partitioned && links[l].heldUntil == 0 {
            return 0
        }
        if links[l].partitioned || links[l].heldUntil == Int64.max { return nil }
        var delay = links[l].spec.delay.sample(using: links[l].rng) + links[l].extraDelay
        if links[l].heldUntil > now { delay += links[l].heldUntil - now }
        let loss = links[l].spec.loss
        if loss > 0 {
            let rng = links[l].rng
            var lost = 0
            while rng.bernoulli(loss) && lost < 64 {
                delay += links[l].spec.retransmit.nanoseconds
                lost += 1
            }
        }
        return delay
    }

    /// The index in `links` of the link from zone `from` to zone `to`, made on first use.
    ///
    /// A pair's state and random stream exist only once a message, a check or a fault uses it; its stream is keyed
    /// by the pair's zone names, so results do not depend on the order in which pairs come into use.
    ///
    /// - Complexity: O(1); the first use of a pair allocates its stream.
    @inline(__always)
    mutating func link(from: Int, to: Int) -> Int {
        let slot = from * spec.zones.count + to
        let index = linkIndex[slot]
        if index >= 0 { return Int(index) }
        return makeLink(slot: slot, from: from, to: to)
    }

    @inline(never)
    mutating func makeLink(slot: Int, from: Int, to: Int) -> Int {
        let spec = spec.links[from, to]
        links.append(
            LinkState(
                spec: spec,
                instant: spec.isInstant,
                rng: stream("network/\(self.spec.zones[from])/\(self.spec.zones[to])")
            )
        )
        linkIndex[slot] = Int32(links.count - 1)
        return links.count - 1
    }

    // MARK: - Replicas

    /// An attempt reaches its replica: it is refused, limited, rejected, queued or started (the replica state
    /// machine decides; the simulator schedules what follows).
    mutating func arrive(_ a: Int) {
        let r = Int(attempts[a].replica)
        attempts[a].replicaEpoch = replicas[r].epoch
        if attempts[a].denied, replicas[r].isServing {
            recorder.count(.authzDenials, at: now)
            answer(a, status: .forbidden)
            return
        }
        switch replicas[r].machine.arrive(Int32(a), now: now) {
        case .refused:
            attempts[a].phase = .answering
            attempts[a].status = .refused
            schedule(.response(attempt: Int32(a), generation: attempts[a].generation), at: now + refusedCostNs)
        case .limited:
            recorder.count(.limiterRejections, at: now)
            answer(a, status: .overloaded)
        case .rejected(let permit):
            attempts[a].permit = permit
            answer(a, status: .overloaded)
        case .queued(let permit):
            attempts[a].permit = permit
            attempts[a].phase = .queued
            queuedTotal += 1
        case .started(let finish, let permit):
            attempts[a].permit = permit
            busyTotal += 1
            startWork(a, finish: finish)
        }
    }

    /// An attempt holds a worker from now; its local work ends at `finish`.
    @inline(__always)
    mutating func startWork(_ a: Int, finish: Int64) {
        attempts[a].phase = .working
        schedule(.serviceDone(attempt: Int32(a), generation: attempts[a].generation), at: finish)
    }

    /// The local work of an attempt is done: its downstream calls begin.
    mutating func serviceDone(_ a: Int) {
        let r = Int(attempts[a].replica)
        guard attempts[a].phase == .working, attempts[a].replicaEpoch == replicas[r].epoch else { return }
        runStages(a, replica: r)
    }

    /// Issues the attempt's current downstream step, or finishes the attempt when none is left.
    mutating func runStages(_ a: Int, replica r: Int) {
        let stage = Int(attempts[a].stage)
        if stage < replicas[r].stageCount && !attempts[a].failedChild {
            let service = Int(replicas[r].service)
            let fanout = spec.services[service].calls[stage].fanout
            attempts[a].pendingChildren = Int32(fanout)
            let served = Int(attempts[a].call)
            let inherited = calls[served].generation == attempts[a].callGeneration
            let path = inherited ? calls[served].path : 0
            let host = inherited ? calls[served].host : 0
            for _ in 0..<fanout {
                let edge = route(site: callSites[service][stage], path: path, host: host)
                startCall(
                    edge: edge,
                    zone: replicas[r].zone,
                    parent: Int32(a),
                    client: -1,
                    user: -1,
                    path: path,
                    host: host
                )
                // A child may finish inline (zero delay everywhere); stop if this attempt moved on.
                if attempts[a].phase != .working || Int(attempts[a].stage) != stage { break }
            }
            return
        }
        // Done: draw the error, release the worker (the next queued request starts), answer.
        let status: AttemptStatus = attempts[a].failedChild || replicas[r].machine.drawError() ? .error : .ok
        releaseWorker(replica: r)
        answer(a, status: status)
    }

    /// Frees a worker slot of replica `r` and gives it to the next queued attempt, if any.
    mutating func releaseWorker(replica r: Int) {
        if let (next, finish) = replicas[r].machine.releaseWorker(now: now) {
            queuedTotal -= 1
            startWork(Int(next), finish: finish)
        } else {
            busyTotal -= 1
        }
    }

    /// A child call of attempt `parent` has ended.
    mutating func childDone(parent a: Int, generation: UInt32, success: Bool) {
        guard attempts[a].generation == generation, attempts[a].phase == .working else { return }
        let r = Int(attempts[a].replica)
        guard attempts[a].replicaEpoch == replicas[r].epoch else { return }
        if !success { attempts[a].failedChild = true }
        attempts[a].pendingChildren -= 1
        if attempts[a].pendingChildren > 0 { return }
        if !attempts[a].failedChild { attempts[a].stage += 1 }
        runStages(a, replica: r)
    }

    /// Sends an attempt's response back to its caller.
    mutating func answer(_ a: Int, status: AttemptStatus) {
        attempts[a].phase = .answering
        attempts[a].status = status
        if let permit = attempts[a].permit {
            attempts[a].permit = nil
            let r = Int(attempts[a].replica)
            let outcome: ConcurrencyOutcome
            switch status {
            case .ok: outcome = .success
            case .overloaded, .reset, .refused: outcome = .dropped
            case .error, .forbidden: outcome = .ignored
            }
            replicas[r].machine.releasePermit(permit, outcome: outcome, now: now)
            recorder.sampleConcurrencyLimit(replicas[r].machine.concurrencyLimit, at: now)
        }
        let c = Int(attempts[a].call)
        let from = Int(replicas[Int(attempts[a].replica)].zone)
        guard calls[c].generation == attempts[a].callGeneration else {
            releaseFromBalancer(a)
            freeAttempt(a)  // nobody is waiting
            return
        }
        guard let delay = transit(from: from, to: Int(calls[c].callerZone)) else {
            if attempts[a].waitedOn {
                // The response is lost on its way back: the caller still waits, and only its timeout, its deadline
                // or the run's end can end this attempt (and free the caller's worker, between services).
                attempts[a].phase = .lost
            } else {
                releaseFromBalancer(a)
                freeAttempt(a)
            }
            return
        }
        if delay == 0 {
            receive(a)
        } else {
            schedule(.response(attempt: Int32(a), generation: attempts[a].generation), at: now + delay)
        }
    }

    // MARK: - Callers

    /// The caller is done with an attempt (answered, refused, or timed out when `status` is nil): its circuit
    /// breaker and outlier detection learn the result.
    mutating func attemptEnded(attempt: AttemptState, status: AttemptStatus?) {
        let edge = Int(attempt.edge)
        guard edge >= 0 else { return }
        let success = status == .ok || status == .forbidden
        if attempt.breakerHeld {
            let duration = SimDuration(nanoseconds: now - attempt.sentAt)
            if edges[edge].breaker!.finish(
                isRetry: attempt.isRetry,
                pool: attempt.pool,
                success: success,
                duration: duration,
                at: queue.now
            ) {
                recorder.count(.breakerOpens, at: now)
            }
            if attempt.pool == .connected && !edges[edge].pending.isEmpty {
                schedule(.dispatchPending(edge: Int32(edge)), at: now)
            }
        }
        guard attempt.replica >= 0,
            edges[edge].outlier != nil || edges[edge].nginx != nil || edges[edge].haproxy != nil
        else { return }
        let result: RequestResult
        switch status {
        case .ok?: result = .success
        case .error?: result = .httpError(status: 500)
        case .overloaded?: result = .httpError(status: 503)
        case .reset?, .refused?, .none: result = .gatewayFailure
        case .forbidden?: result = .success  // the replica is sound; the caller may not call it
        }
        let host = Int(replicas[Int(attempt.replica)].localIndex)
        if let event = edges[edge].recordOutlier(host: host, result: result, at: queue.now) {
            applyOutlierEvent(event, edge: edge)
        }
        if edges[edge].nginx != nil || edges[edge].haproxy != nil {
            observePassive(edge: edge, host: host, result: result)
        }
    }

    /// Applies an ejection or unejection to the edge's view.
    mutating func applyOutlierEvent(_ event: OutlierEvent, edge: Int) {
        if edges[edge].applyOutlierEvent(event, at: queue.now) { recorder.count(.ejections, at: now) }
    }

    /// The periodic outlier-detection sweep of an edge: success-rate and failure-percentage detectors, unejection.
    mutating func sweepOutliers(edge: Int) {
        guard edges[edge].outlier != nil, let interval = edges[edge].policy.outlierDetection?.interval else { return }
        for event in edges[edge].sweepOutliers(at: queue.now) { applyOutlierEvent(event, edge: edge) }
        schedule(.outlierSweep(edge: Int32(edge)), at: now + interval.nanoseconds)
    }

    /// The caller's balancer stops counting attempt `a` as outstanding and learns its latency so far.
    @inline(__always)
    mutating func releaseFromBalancer(_ a: Int) {
        guard attempts[a].heldByBalancer else { return }
        attempts[a].heldByBalancer = false
        edges[Int(attempts[a].edge)].finished(
            replica: replicas[Int(attempts[a].replica)].localIndex,
            latency: SimDuration(nanoseconds: now - attempts[a].sentAt),
            at: queue.now
        )
    }

    /// A response (or a refusal) reaches the caller.
    mutating func receive(_ a: Int) {
        let c = Int(attempts[a].call)
        let status = attempts[a].status
        let current = calls[c].generation == attempts[a].callGeneration && attempts[a].waitedOn
        let attemptInfo = attempts[a]
        if attemptInfo.edge >= 0, edges[Int(attemptInfo.edge)].throttle != nil, attemptInfo.replica >= 0 {
            // The backend accepted the request unless it refused it for overload.
            let accepted = status != .overloaded && status != .refused
            edges[Int(attemptInfo.edge)].throttle!.record(accepted: accepted, at: queue.now)
        }
        if attemptInfo.holdsConnection && current { returnConnection(a) }
        releaseFromBalancer(a)
        freeAttempt(a)
        guard current else { return }  // the caller gave up on this attempt (timeout, lost hedge) or on the call
        calls[c].outstanding -= 1
        attemptEnded(attempt: attemptInfo, status: status)
        if status == .ok {
            releaseRetry(c, edge: Int(calls[c].edge))
            if attemptInfo.isHedge { recorder.count(.hedgesWon, at: now) }
            if calls[c].outstanding > 0 { cancelOutstanding(call: c) }
            finishCall(c, outcome: .ok)
        } else if calls[c].outstanding > 0 {
            // Hedged: the others are still out; a retryable failure sends the next hedge at once.
            sendHedgeIfAllowed(call: c, status: status)
        } else {
            attemptFailed(c, outcome: status.outcome, status: status)
        }
    }

    /// The hedging delay after attempt `attemptNumber` passed: send another attempt if none was sent since and the
    /// call still waits.
    mutating func hedgeTimer(call c: Int, generation: UInt32, attemptNumber: Int32) {
        guard calls[c].generation == generation, calls[c].live, calls[c].attemptsMade == attemptNumber,
            calls[c].outstanding > 0, let hedging = edges[Int(calls[c].edge)].policy.hedging,
            Int(attemptNumber) < hedging.maxAttempts
        else { return }
        sendAttempt(call: c, hedge: true)
    }

    /// After a hedged attempt failed with `status` while others are out: the next hedge, if allowed.
    mutating func sendHedgeIfAllowed(call c: Int, status: AttemptStatus?) {
        let edge = Int(calls[c].edge)
        guard edges[edge].hedgesAfter(attemptsMade: Int(calls[c].attemptsMade), failure: Self.failure(status)) else {
            return
        }
        sendAttempt(call: c, hedge: true)
    }

    /// Cancels the attempts of call `c` that are still out (a hedge won): their answers will be ignored, and the
    /// balancer and breaker let go of them.
    mutating func cancelOutstanding(call c: Int) {
        let generation = calls[c].generation
        for i in 0..<min(Int(calls[c].attemptsMade), 8) {
            let b = Int(calls[c].slots[i])
            guard b >= 0, attempts[b].waitedOn, attempts[b].call == Int32(c), attempts[b].callGeneration == generation
            else { continue }
            attempts[b].waitedOn = false
            calls[c].outstanding -= 1
            if attempts[b].breakerHeld {
                attempts[b].breakerHeld = false
                let edge = Int(attempts[b].edge)
                edges[edge].breaker!.cancel(isRetry: attempts[b].isRetry, pool: attempts[b].pool, at: queue.now)
                if attempts[b].pool == .connected && !edges[edge].pending.isEmpty {
                    schedule(.dispatchPending(edge: Int32(edge)), at: now)
                }
            }
            releaseFromBalancer(b)
            if attempts[b].phase == .lost || attempts[b].phase == .pending { freeAttempt(b) }
        }
    }

    /// The retry-policy view of an attempt's failure (nil status: a per-attempt timeout).
    static func failure(_ status: AttemptStatus?) -> AttemptFailure {
        switch status {
        case .none: return .perTryTimeout
        case .error?, .ok?: return .httpStatus(500)
        case .overloaded?: return .httpStatus(503)
        case .forbidden?: return .httpStatus(403)
        case .reset?: return .reset
        case .refused?: return .connectFailure
        }
    }

    /// The per-attempt timeout of call `c` fires.
    mutating func timeout(call c: Int, generation: UInt32, attemptNumber: Int32) {
        guard calls[c].generation == generation, calls[c].live else { return }
        let a: Int
        if attemptNumber <= 8 {
            a = Int(calls[c].slots[Int(attemptNumber) - 1])
        } else {
            guard calls[c].attemptsMade == attemptNumber else { return }
            a = Int(calls[c].currentAttempt)
        }
        guard a >= 0, attempts[a].waitedOn, attempts[a].call == Int32(c), attempts[a].callGeneration == generation
        else { return }
        // The attempt goes on at its replica (no cancellation), but its answer will be ignored.
        attempts[a].waitedOn = false
        calls[c].outstanding -= 1
        attemptEnded(attempt: attempts[a], status: nil)
        attempts[a].breakerHeld = false
        if edges[Int(calls[c].edge)].policy.releaseOnTimeout || attempts[a].phase == .lost { releaseFromBalancer(a) }
        if attempts[a].phase == .lost || attempts[a].phase == .pending { freeAttempt(a) }
        if calls[c].outstanding > 0 {
            sendHedgeIfAllowed(call: c, status: nil)
        } else {
            attemptFailed(c, outcome: .timedOut)
        }
    }

    /// An attempt failed with `status` (nil: a timeout): retry when the policy, its conditions and the edge's
    /// budget allow — after the backoff, if any — otherwise end the call.
    mutating func attemptFailed(_ c: Int, outcome: RequestOutcome, status: AttemptStatus? = nil) {
        let edge = Int(calls[c].edge)
        releaseRetry(c, edge: edge)
        let decision = edges[edge].afterFailure(
            attemptsMade: Int(calls[c].attemptsMade),
            failure: Self.failure(status),
            deadline: calls[c].deadline,
            backoff: &calls[c].backoff,
            at: queue.now
        )
        switch decision {
        case .hedge:
            // Hedging: every attempt has failed and more are allowed — the next goes out at once.
            sendAttempt(call: c, hedge: true)
        case .finish:
            finishCall(c, outcome: outcome)
        case .budgetDenied:
            recorder.count(.retriesDenied, at: now)
            finishCall(c, outcome: outcome)
        case .retry(let wait, let holdsBudget):
            calls[c].retryHeld = holdsBudget
            if wait > .zero {
                schedule(.retry(call: Int32(c), generation: calls[c].generation), at: now + wait.nanoseconds)
            } else {
                sendAttempt(call: c)
            }
        }
    }

    /// Tells the edge's budget that the call's admitted retry has ended.
    @inline(__always)
    mutating func releaseRetry(_ c: Int, edge: Int) {
        guard calls[c].retryHeld else { return }
        calls[c].retryHeld = false
        edges[edge].retryFinished(at: queue.now)
    }

    /// Call `c` has ended: report it to the parent attempt, or record the client request.
    mutating func finishCall(_ c: Int, outcome: RequestOutcome) {
        let edge = Int(calls[c].edge)
        if edge >= 0 { edges[edge].callFinished(success: outcome == .ok, at: queue.now) }
        let parent = Int(calls[c].parent)
        if parent >= 0 {
            let generation = calls[c].parentGeneration
            freeCall(c)
            childDone(parent: parent, generation: generation, success: outcome == .ok)
            return
        }
        recorder.recordFinish(
            start: calls[c].start,
            now: now,
            outcome: outcome,
            attempts: Int(calls[c].attemptsMade)
        )
        rootsInFlight -= 1
        let client = Int(calls[c].client)
        let user = calls[c].user
        freeCall(c)
        if user >= 0, case .closed(_, let think) = spec.clients[client].load {
            let next = now + think.sample(using: clients[client].think)
            if next < durationNs { schedule(.arrival(client: Int32(client), user: user), at: next) }
        }
    }
}
