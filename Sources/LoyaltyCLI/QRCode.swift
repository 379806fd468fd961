/// A QR code (ISO/IEC 18004) for a short text, drawn in the terminal: byte mode, error correction level L,
/// versions 1 to 5 (up to 106 bytes: a card's barcode payload needs about 22), mask pattern 0.
struct QRCode: Sendable {
    /// Modules per side.
    let size: Int
    /// `modules[row][column]`: true is dark.
    private(set) var modules: [[Bool]]
    private var isFunction: [[Bool]]

    private static let dataCodewords = [19, 34, 55, 80, 108]
    private static let errorCorrectionCodewords = [7, 10, 15, 20, 26]
    private static let alignmentPosition = [0, 18, 22, 26, 30]

    /// Encodes `text`, or nil if it is too long for version 5.
    init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard let version = (1...5).first(where: { 12 + bytes.count * 8 <= Self.dataCodewords[$0 - 1] * 8 }) else {
            return nil
        }
        size = 17 + 4 * version
        modules = Array(repeating: Array(repeating: false, count: size), count: size)
        isFunction = modules
        drawFunctionPatterns(version: version)
        let data = Self.codewords(bytes, version: version)
        drawCodewords(data + Self.reedSolomonRemainder(data, degree: Self.errorCorrectionCodewords[version - 1]))
        applyMask0()
        drawFormatBits()
    }

    /// The code as lines of half-block characters with a quiet zone of `margin` modules. Light modules are drawn,
    /// so that on a dark terminal the dark modules show as the background.
    func render(margin: Int = 2) -> [String] {
        let full = size + 2 * margin
        func dark(_ row: Int, _ column: Int) -> Bool {
            let r = row - margin
            let c = column - margin
            return r >= 0 && r < size && c >= 0 && c < size && modules[r][c]
        }
        var lines: [String] = []
        for row in stride(from: 0, to: full, by: 2) {
            var line = ""
            for column in 0..<full {
                let top = !dark(row, column)
                let bottom = row + 1 < full && !dark(row + 1, column)
                line += top && bottom ? "█" : top ? "▀" : bottom ? "▄" : " "
            }
            lines.append(line)
        }
        return lines
    }

    // MARK: Function patterns

    private mutating func setFunction(row: Int, column: Int, _ dark: Bool) {
        modules[row][column] = dark
        isFunction[row][column] = true
    }

    private mutating func drawFunctionPatterns(version: Int) {
        for index in 0..<size {
            setFunction(row: 6, column: index, index % 2 == 0)
            setFunction(row: index, column: 6, index % 2 == 0)
        }
        for (row, column) in [(3, 3), (3, size - 4), (size - 4, 3)] {
            for dy in -4...4 {
                for dx in -4...4 where (0..<size).contains(row + dy) && (0..<size).contains(column + dx) {
                    let distance = max(abs(dx), abs(dy))
                    setFunction(row: row + dy, column: column + dx, distance != 2 && distance != 4)
                }
            }
        }
        if version >= 2 {
            let center = Self.alignmentPosition[version - 1]
            for dy in -2...2 {
                for dx in -2...2 { setFunction(row: center + dy, column: center + dx, max(abs(dx), abs(dy)) != 1) }
            }
        }
        drawFormatBits()  // reserves the format areas before the data is placed; redrawn after masking
    }

    /// Format information for level L (01) and mask 0, BCH-protected and XOR-masked, in both copies.
    private mutating func drawFormatBits() {
        let data = 1 << 3 | 0
        var remainder = data
        for _ in 0..<10 { remainder = (remainder << 1) ^ ((remainder >> 9) * 0x537) }
        let bits = (data << 10 | remainder) ^ 0x5412
        func bit(_ index: Int) -> Bool { (bits >> index) & 1 == 1 }
        for index in 0..<6 { setFunction(row: index, column: 8, bit(index)) }
        setFunction(row: 7, column: 8, bit(6))
        setFunction(row: 8, column: 8, bit(7))
        setFunction(row: 8, column: 7, bit(8))
        for index in 9..<15 { setFunction(row: 8, column: 14 - index, bit(index)) }
        for index in 0..<8 { setFunction(row: 8, column: size - 1 - index, bit(index)) }
        for index in 8..<15 { setFunction(row: size - 15 + index, column: 8, bit(index)) }
        setFunction(row: size - 8, column: 8, true)
    }

    // MARK: Data

    /// Mode indicator, length, the bytes, terminator and padding, as data codewords.
    private static func codewords(_ bytes: [UInt8], version: Int) -> [UInt8] {
        var bits: [Bool] = []
        func append(_ value: Int, _ count: Int) {
            for index in stride(from: count - 1, through: 0, by: -1) { bits.append((value >> index) & 1 == 1) }
        }
        append(0b0100, 4)
        append(bytes.count, 8)
        for byte in bytes { append(Int(byte), 8) }
        let capacity = dataCodewords[version - 1] * 8
        append(0, min(4, capacity - bits.count))
        while bits.count % 8 != 0 { bits.append(false) }
        var padIndex = 0
        while bits.count < capacity {
            append(padIndex % 2 == 0 ? 0xEC : 0x11, 8)
            padIndex += 1
        }
        return stride(from: 0, to: bits.count, by: 8).map { start in
            bits[start..<start + 8].reduce(UInt8(0)) { $0 << 1 | ($1 ? 1 : 0) }
        }
    }

    /// Places the codewords in the zigzag from the bottom right, two columns at a time, skipping the timing column.
    private mutating func drawCodewords(_ data: [UInt8]) {
        var index = 0
        var right = size - 1
        while right >= 1 {
            if right == 6 { right = 5 }
            for vertical in 0..<size {
                for offset in 0..<2 {
                    let column = right - offset
                    let upward = (right + 1) & 2 == 0
                    let row = upward ? size - 1 - vertical : vertical
                    if !isFunction[row][column] && index < data.count * 8 {
                        modules[row][column] = (data[index >> 3] >> (7 - UInt8(index & 7))) & 1 == 1
                        index += 1
                    }
                }
            }
            right -= 2
        }
    }

    private mutating func applyMask0() {
        for row in 0..<size {
            for column in 0..<size where !isFunction[row][column] && (row + column) % 2 == 0 {
                modules[row][column].toggle()
            }
        }
    }

    // MARK: Reed-Solomon over GF(256) with the polynomial 0x11D

    static func reedSolomonRemainder(_ data: [UInt8], degree: Int) -> [UInt8] {
        var divisor = [UInt8](repeating: 0, count: degree - 1) + [1]
        var root: UInt8 = 1
        for _ in 0..<degree {
            for index in 0..<divisor.count {
                divisor[index] = multiply(divisor[index], root)
                if index + 1 < divisor.count { divisor[index] ^= divisor[index + 1] }
            }
            root = multiply(root, 0x02)
        }
        var result = [UInt8](repeating: 0, count: degree)
        for byte in data {
            let factor = byte ^ result.removeFirst()
            result.append(0)
            for (index, coefficient) in divisor.enumerated() { result[index] ^= multiply(coefficient, factor) }
        }
        return result
    }

    private static func multiply(_ x: UInt8, _ y: UInt8) -> UInt8 {
        var z = 0
        for index in stride(from: 7, through: 0, by: -1) {
            z = (z << 1) ^ ((z >> 7) * 0x11D)
            z ^= Int((y >> UInt8(index)) & 1) * Int(x)
        }
        return UInt8(z)
    }
}
