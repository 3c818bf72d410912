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
    /// An arrival: the client sends a request, and an open-loop client schedules its next one.
    mutating func arrival(client c: Int, user: Int32) {
        if user < 0, let next = nextArrival(client: c, after: now) {
            schedule(.arrival(client: Int32(c), user: -1), at: next)
        }
        recorder.recordArrival(at: now)
        rootsInFlight += 1
        var path = clients[c].pathIndices.first ?? 0
        if let stream = clients[c].paths {
            let u = stream.uniform()
            path =
                clients[c].pathIndices[
                    clients[c].pathCumulative.firstIndex { u < $0 } ?? (clients[c].pathIndices.count - 1)
                ]
        }
        let host = clients[c].hostIndex
        let edge = route(site: clientSites[c], path: path, host: host)
        startCall(edge: edge, zone: clients[c].zone, parent: -1, client: Int32(c), user: user, path: path, host: host)
    }

    /// The time of the open-loop client's next arrival after `time`, or `nil` when arrivals have ended.
    ///
    /// Poisson arrivals with a varying rate use thinning (Lewis and Shedler): candidates at the peak rate, each kept
    /// with probability rate(t) / peak. The candidates come from the client's arrival stream and the coin flips from
    /// a separate stream, so two variants with the same schedule see identical arrivals. A constant rate needs no
    /// coin flip.
    mutating func nextArrival(client c: Int, after time: Int64) -> Int64? {
        let peak = clients[c].peakRate
        guard peak > 0 else { return nil }
        var t = time
        if clients[c].steadyPoisson {
            t += max(1, clampToNanoseconds(clients[c].arrivals.exponential(mean: 1e9 / peak)))
            return t < durationNs ? t : nil
        }
        guard case .open(let process, let schedule) = spec.clients[c].load else { return nil }
        switch process {
        case .poisson:
            while true {
                t += max(1, clampToNanoseconds(clients[c].arrivals.exponential(mean: 1e9 / peak)))
                if t >= durationNs { return nil }
                let rate = self.rate(client: c, schedule: schedule, at: t)
                if rate >= peak || clients[c].thinning.uniform() * peak < rate { return t }
            }
        case .constant:
            var rate = self.rate(client: c, schedule: schedule, at: t)
            if time == 0 && rate > 0 { return clampToNanoseconds(1e9 / rate / 2) }
            while rate <= 0 {
                // Skip to the next change of the rate.
                guard let change = nextRateChange(client: c, schedule: schedule, after: t) else { return nil }
                t = change
                rate = self.rate(client: c, schedule: schedule, at: t)
                if rate > 0 { return t < durationNs ? t : nil }
            }
            t += max(1, clampToNanoseconds(1e9 / rate))
            return t < durationNs ? t : nil
        }
    }

    /// The client's arrival rate (per second) at `time`: its schedule times any active load spikes.
    mutating func rate(client c: Int, schedule: [RatePoint], at time: Int64) -> Double {
        var base = 0.0
        if let i = schedule.lastIndex(where: { $0.at.nanoseconds <= time }) {
            let point = schedule[i]
            base = point.rate
            if point.ramp, i + 1 < schedule.count {
                let next = schedule[i + 1]
                let span = Double(next.at.nanoseconds - point.at.nanoseconds)
                if span > 0 { base += (next.rate - point.rate) * Double(time - point.at.nanoseconds) / span }
            }
        }
        for fault in spec.faults {
            if case .loadSpike(let client, let factor) = fault.kind, client == c, fault.at.nanoseconds <= time,
                fault.duration.map({ time < fault.at.nanoseconds + $0.nanoseconds }) ?? true
            {
                base *= factor
            }
        }
        return base
    }

    /// The first time after `time` at which the client's rate may change.
    private mutating func nextRateChange(client c: Int, schedule: [RatePoint], after time: Int64) -> Int64? {
        var candidates = schedule.map(\.at.nanoseconds).filter { $0 > time }
        for fault in spec.faults {
            if case .loadSpike(let client, _) = fault.kind, client == c {
                candidates.append(fault.at.nanoseconds)
                if let d = fault.duration { candidates.append(fault.at.nanoseconds + d.nanoseconds) }
            }
        }
        return candidates.filter { $0 > time && $0 < durationNs }.min()
    }

    /// The highest rate the client ever reaches: schedule peak times every load spike that could overlap it.
    mutating func peakRate(client c: Int) -> Double {
        guard case .open(_, let schedule) = spec.clients[c].load else { return 0 }
        var peak = schedule.map(\.rate).max() ?? 0
        for fault in spec.faults {
            if case .loadSpike(let client, let factor) = fault.kind, client == c, factor > 1 { peak *= factor }
        }
        return peak
    }

    /// Whether the client is Poisson at one rate from time zero with no load spike: no thinning needed.
    mutating func isSteadyPoisson(client c: Int) -> Bool {
        guard case .open(.poisson, let schedule) = spec.clients[c].load, schedule.count == 1,
            schedule[0].at == .zero
        else { return false }
        return !spec.faults.contains {
            if case .loadSpike(let client, _) = $0.kind { return client == c }
            return false
        }
    }
}
