//===----------------------------------------------------------------------===//
// meshsim — SimCore
//===----------------------------------------------------------------------===//

/// What a balancer may know about one endpoint when it picks: its index in the service, weight and load.
public struct EndpointState: Sendable, Equatable {
    /// The endpoint's index within its service (stable while the endpoint exists).
    public var index: Int32
    /// The endpoint's static weight (1 when unweighted).
    public var weight: Int32
    /// Requests sent to the endpoint by this caller and not yet answered (Envoy `rq_active`, nginx `conns`,
    /// HAProxy `served`).
    public var active: Int32
    /// When the endpoint became ready (created or passed its health check), for slow start.
    public var readySince: SimInstant

    /// Creates the state of endpoint `index`.
    public init(index: Int32, weight: Int32 = 1, active: Int32 = 0, readySince: SimInstant = .zero) {
        self.index = index
        self.weight = weight
        self.active = active
        self.readySince = readySince
    }
}
