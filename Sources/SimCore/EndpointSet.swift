//===----------------------------------------------------------------------===//
// meshsim — SimCore
//===----------------------------------------------------------------------===//

/// What a balancer may know about one endpoint when it picks: its index in the service, weight and load.
public struct EndpointState: Sendable, Equatable {
    /// The endpoint's index within its service.
    public var index: Int32
    /// The endpoint's static weight (1 when unweighted).
    public var weight: Int32
    /// Requests sent to the endpoint by this caller and not yet answered.
    public var active: Int32

    /// Creates the state of endpoint `index`.
    public init(index: Int32, weight: Int32 = 1, active: Int32 = 0) {
        self.index = index
        self.weight = weight
        self.active = active
    }
}
