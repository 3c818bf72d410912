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
    /// An arrival: the client sends a request, and an open-loop client schedules its next one.
    mutating func arrival(client c: Int, user: Int32) {
        if user < 0, let next = nextArrival(client: c) {
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

    /// The time of the open-loop client's next arrival, or `nil` when arrivals have ended (see
    /// ``SharedModel/ArrivalGenerator``, which `load` runs too).
    mutating func nextArrival(client c: Int) -> Int64? {
        clients[c].generator?.next()
    }
}
