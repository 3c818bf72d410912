//===----------------------------------------------------------------------===//
// meshsim — MeshModel
//===----------------------------------------------------------------------===//

import Balancers
import DequeModule
import Reports
import SimCore
import SimKernel
import SimRandom
import Spec

extension Simulation {
    /// Fault `i` begins: crashes and scaling act now; everything else is recomputed from the active faults.
    mutating func startFault(_ i: Int) {
        let fault = spec.faults[i]
        faultActive[i] = true
        if let duration = fault.duration {
            schedule(.faultEnd(index: Int32(i)), at: fault.at.nanoseconds + duration.nanoseconds)
        }
        switch fault.kind {
        case .crash(let selection):
            for r in replicaIndices(selection) { crash(replica: r) }
        case .zoneOutage(let zone):
            for r in replicas.indices where Int(replicas[r].zone) == zone { crash(replica: r) }
        case .scale(let service, let delta):
            scaleChanges[i] = scale(service: service, delta: delta)
        default:
            recomputeModifiers()
        }
    }

    /// Fault `i` ends: crashed replicas restart, scaling is undone, modifiers are recomputed.
    mutating func endFault(_ i: Int) {
        faultActive[i] = false
        switch spec.faults[i].kind {
        case .crash(let selection):
            for r in replicaIndices(selection) { restart(replica: r) }
        case .zoneOutage(let zone):
            for r in replicas.indices where Int(replicas[r].zone) == zone { restart(replica: r) }
        case .scale:
            for r in scaleChanges[i] { setActive(replica: r, !replicas[r].active) }
            scaleChanges[i] = []
        default:
            recomputeModifiers()
        }
    }

    /// Global replica indices of a selection (every replica of the service when it names none).
    mutating func replicaIndices(_ selection: ReplicaSelection) -> [Int] {
        let first = serviceFirstReplica[selection.service]
        if selection.replicas.isEmpty {
            return Array(first..<(first + spec.services[selection.service].replicas.count))
        }
        return selection.replicas.map { first + $0 }
    }

    /// Crashes replica `r`: its queued and running requests are reset; callers learn of it after propagation.
    mutating func crash(replica r: Int) {
        replicas[r].crashes += 1
        guard replicas[r].crashes == 1 else { return }
        if replicas[r].active { capacityTotal -= Int(replicas[r].workers) }
        replicas[r].epoch &+= 1
        while let a = replicas[r].waiting.popFirst() {
            queuedTotal -= 1
            answer(Int(a), status: .reset)
        }
        for a in attempts.indices where attempts[a].phase == .working && Int(attempts[a].replica) == r {
            answer(a, status: .reset)
        }
        busyTotal -= Int(replicas[r].busy)
        replicas[r].busy = 0
        if replicas[r].active { announce(replica: r, present: false) }
    }

    /// Restarts replica `r` once no crash fault holds it down.
    mutating func restart(replica r: Int) {
        replicas[r].crashes -= 1
        guard replicas[r].crashes == 0 else { return }
        if replicas[r].active {
            capacityTotal += Int(replicas[r].workers)
            announce(replica: r, present: true)
        }
    }

    /// Starts spares (`delta` > 0) or stops running replicas (`delta` < 0); returns the replicas changed.
    mutating func scale(service s: Int, delta: Int) -> [Int] {
        let first = serviceFirstReplica[s]
        let all = Array(first..<(first + spec.services[s].replicas.count))
        var changed: [Int] = []
        if delta > 0 {
            for r in all where !replicas[r].active && changed.count < delta { changed.append(r) }
        } else {
            for r in all.reversed() where replicas[r].active && changed.count < -delta { changed.append(r) }
        }
        for r in changed { setActive(replica: r, delta > 0) }
        return changed
    }

    /// Starts or stops a replica; a stopped replica finishes what it holds but refuses new connections.
    mutating func setActive(replica r: Int, _ active: Bool) {
        guard replicas[r].active != active else { return }
        replicas[r].active = active
        if replicas[r].crashes == 0 {
            capacityTotal += active ? Int(replicas[r].workers) : -Int(replicas[r].workers)
            announce(replica: r, present: active)
        }
    }

    /// Tells the callers of the replica's service, after the propagation delay, that it appeared or went.
    mutating func announce(replica r: Int, present: Bool) {
        schedule(
            .discovery(service: replicas[r].service, replica: replicas[r].localIndex, present: present),
            at: now + propagationNs
        )
    }

    /// Updates the callers' view of a service's endpoints.
    mutating func applyDiscovery(service s: Int, replica local: Int32, present: Bool) {
        let position = views[s].firstIndex { $0.index == local }
        if present, position == nil {
            let weight = spec.services[s].replicas[Int(local)].weight
            let at = views[s].firstIndex { $0.index > local } ?? views[s].count
            views[s].insert(EndpointState(index: local, weight: Int32(clamping: weight), readySince: queue.now), at: at)
        } else if !present, let position {
            views[s].remove(at: position)
        } else {
            return
        }
        let zone = Int(replicas[serviceFirstReplica[s] + Int(local)].zone)
        viewZoneCounts[s][zone] += present ? 1 : -1
        for e in edgesByTarget[s] { edges[Int(e)].setView(views[s], at: queue.now) }
    }

    /// Recomputes slowdowns, error rates, pauses and link faults from the set of active faults.
    mutating func recomputeModifiers() {
        for r in replicas.indices {
            replicas[r].slowdown = 1
            replicas[r].errorRate = replicas[r].baseErrorRate
            replicas[r].pauseEvery = 0
            replicas[r].serviceTime = replicas[r].baseServiceTime
        }
        for l in links.indices {
            links[l].extraDelay = 0
            links[l].partitioned = false
        }
        for (i, fault) in spec.faults.enumerated() where faultActive[i] {
            switch fault.kind {
            case .slowdown(let selection, let factor):
                for r in replicaIndices(selection) { replicas[r].slowdown *= factor }
            case .serviceTime(let selection, let distribution):
                for r in replicaIndices(selection) { replicas[r].serviceTime = distribution }
            case .errors(let selection, let rate):
                for r in replicaIndices(selection) { replicas[r].errorRate = max(replicas[r].errorRate, rate) }
            case .pause(let selection, let every, let length):
                for r in replicaIndices(selection) {
                    replicas[r].pauseEvery = every.nanoseconds
                    replicas[r].pauseLength = length.nanoseconds
                    replicas[r].pauseOrigin = fault.at.nanoseconds
                    replicas[r].pauseUntil = fault.duration.map { fault.at.nanoseconds + $0.nanoseconds } ?? Int64.max
                }
            case .latency(let a, let b, let delay):
                links[link(from: a, to: b)].extraDelay += delay.nanoseconds
                if a != b { links[link(from: b, to: a)].extraDelay += delay.nanoseconds }
            case .partition(let a, let b):
                links[link(from: a, to: b)].partitioned = true
                links[link(from: b, to: a)].partitioned = true
            case .crash, .zoneOutage, .scale, .loadSpike:
                break
            }
        }
    }
}
