//===----------------------------------------------------------------------===//
// meshsim — SimCore
//===----------------------------------------------------------------------===//

import RealModule

/// Elementary functions for policy modules, which import only SimCore (no Foundation, no libm import).
///
/// Backed by swift-numerics' `RealModule`, a pure-Swift package.
public enum SimMath {
    /// e^x.
    @inlinable public static func exp(_ x: Double) -> Double { Double.exp(x) }
    /// The natural logarithm.
    @inlinable public static func log(_ x: Double) -> Double { Double.log(x) }
    /// The base-10 logarithm.
    @inlinable public static func log10(_ x: Double) -> Double { Double.log10(x) }
    /// x^y.
    @inlinable public static func pow(_ x: Double, _ y: Double) -> Double { Double.pow(x, y) }
    /// √x.
    @inlinable public static func sqrt(_ x: Double) -> Double { x.squareRoot() }
}

/// A uniform `Double` in [0, 1) from the top 53 bits of one draw; stable across toolchains.
@inlinable
public func uniformUnit(using rng: inout some RandomNumberGenerator) -> Double {
    Double(rng.next() >> 11) * 0x1.0p-53
}
