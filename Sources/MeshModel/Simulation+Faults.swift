//===----------------------------------------------------------------------===//
// meshsim — MeshModel
//===----------------------------------------------------------------------===//

import Balancers
import DequeModule
import Reports
import SharedModel
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
        let busy = Int(replicas[r].busy)
        guard let queued = replicas[r].machine.crash() else { return }
        if replicas[r].active { capacityTotal -= Int(replicas[r].workers) }
        for a in queued {
            queuedTotal -= 1
            answer(Int(a), status: .reset)
        }
        for a in attempts.indices where attempts[a].phase == .working && Int(attempts[a].replica) == r {
            answer(a, status: .reset)
        }
        busyTotal -= busy
        if replicas[r].active { announce(replica: r, present: false) }
    }

    /// Restarts replica `r` once no crash fault holds it down.
    mutating func restart(replica r: Int) {
        guard replicas[r].machine.restart() else { return }
        capacityTotal += Int(replicas[r].workers)
        announce(replica: r, present: true)
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
        guard replicas[r].machine.setActive(active) else { return }
        if replicas[r].machine.crashes == 0 {
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

    /// Recomputes slowdowns, error rates, service times, pauses and link faults from the set of active faults.
    mutating func recomputeModifiers() {
        var modifiers = Array(repeating: ReplicaModifiers(), count: replicas.count)
        for l in links.indices {
            links[l].extraDelay = 0
            links[l].partitioned = false
            links[l].heldUntil = 0
        }
        for (i, fault) in spec.faults.enumerated() where faultActive[i] {
            switch fault.kind {
            case .slowdown(let selection, _), .serviceTime(let selection, _), .errors(let selection, _),
                .pause(let selection, _, _):
                for r in replicaIndices(selection) { modifiers[r].apply(fault) }
            case .latency(let a, let b, let delay):
                links[link(from: a, to: b)].extraDelay += delay.nanoseconds
                if a != b { links[link(from: b, to: a)].extraDelay += delay.nanoseconds }
            case .partition(let a, let b, let holds):
                for l in [link(from: a, to: b), link(from: b, to: a)] {
                    if holds {
                        let end = fault.duration.map { (fault.at + $0).nanoseconds } ?? Int64.max
                        links[l].heldUntil = max(links[l].heldUntil, end)
                    } else {
                        links[l].partitioned = true
                    }
                }
            case .crash, .zoneOutage, .scale, .loadSpike:
                break
            }
        }
        for r in replicas.indices where modifiers[r] != replicas[r].machine.modifiers {
            replicas[r].machine.setModifiers(modifiers[r])
        }
    }
}
