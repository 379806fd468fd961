extension StringProtocol {
    /// The value as an error message quotes it: in single quotes, at most ``quotedLimit`` Unicode scalars of it and
    /// an ellipsis where it was cut, so that a refusal never echoes a hostile value whole.
    public var quoted: String {
        let scalars = unicodeScalars
        guard scalars.count > quotedLimit else { return "'\(self)'" }
        var prefix = String.UnicodeScalarView()
        prefix.append(contentsOf: scalars.prefix(quotedLimit))
        return "'\(String(prefix))…' (\(scalars.count) characters)"
    }

    /// The length that input limits count: Unicode scalars, so that one letter with thousands of combining marks
    /// (one grapheme) counts as what it is.
    public var inputLength: Int { unicodeScalars.count }
}

/// How many Unicode scalars of a value an error message quotes.
public let quotedLimit = 40
