//===----------------------------------------------------------------------===//
// meshsim — SimCore
//===----------------------------------------------------------------------===//

/// A uniform integer in [0, bound) by Lemire's multiply-shift with rejection; stable across toolchains, unlike
/// the standard library's `random(in:)` internals.
@inlinable
public func uniformBelow(_ bound: UInt64, using rng: inout some RandomNumberGenerator) -> UInt64 {
    precondition(bound > 0)
    var product = rng.next().multipliedFullWidth(by: bound)
    if product.low < bound {
        let threshold = (0 &- bound) % bound
        while product.low < threshold {
            product = rng.next().multipliedFullWidth(by: bound)
        }
    }
    return product.high
}
