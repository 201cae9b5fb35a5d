//! C's integer types as the kernel's formats use them (x86-64, LP64:
//! `long` and pointers are 64 bits, `char` is signed), and the
//! conversions C applies between them.

/// An integer type: its width and signedness. `bool` is its own case,
/// since a conversion to it is `!= 0`, not a truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IntTy {
    /// 8, 16, 32 or 64.
    pub bits: u8,
    /// Signed.
    pub signed: bool,
    /// `_Bool`.
    pub boolean: bool,
}

impl IntTy {
    pub const CHAR: IntTy = IntTy::new(8, true);
    pub const UCHAR: IntTy = IntTy::new(8, false);
    pub const SHORT: IntTy = IntTy::new(16, true);
    pub const USHORT: IntTy = IntTy::new(16, false);
    pub const INT: IntTy = IntTy::new(32, true);
    pub const UINT: IntTy = IntTy::new(32, false);
    pub const LONG: IntTy = IntTy::new(64, true);
    pub const ULONG: IntTy = IntTy::new(64, false);
    pub const BOOL: IntTy = IntTy {
        bits: 8,
        signed: false,
        boolean: true,
    };

    pub const fn new(bits: u8, signed: bool) -> IntTy {
        IntTy {
            bits,
            signed,
            boolean: false,
        }
    }

    /// The type of a field of `size` bytes that the format calls signed.
    pub fn of_size(size: usize, signed: bool) -> Option<IntTy> {
        match size {
            1 | 2 | 4 | 8 => Some(IntTy::new(size as u8 * 8, signed)),
            _ => None,
        }
    }

    /// Bytes.
    pub fn size(self) -> usize {
        self.bits as usize / 8
    }

    /// `v` converted to this type, kept in 64 bits: truncated to the
    /// width, then sign- or zero-extended.
    pub fn norm(self, v: u64) -> u64 {
        if self.boolean {
            return (v != 0) as u64;
        }
        match (self.bits, self.signed) {
            (8, true) => v as i8 as i64 as u64,
            (8, false) => v as u8 as u64,
            (16, true) => v as i16 as i64 as u64,
            (16, false) => v as u16 as u64,
            (32, true) => v as i32 as i64 as u64,
            (32, false) => v as u32 as u64,
            _ => v,
        }
    }

    /// The integer promotions: what is narrower than `int` becomes `int`.
    pub fn promoted(self) -> IntTy {
        if self.bits < 32 {
            IntTy::INT
        } else {
            IntTy::new(self.bits, self.signed)
        }
    }

    /// The usual arithmetic conversions: the type both operands of a
    /// binary operator are converted to.
    pub fn common(a: IntTy, b: IntTy) -> IntTy {
        let (a, b) = (a.promoted(), b.promoted());
        if a.signed == b.signed {
            return if a.bits >= b.bits { a } else { b };
        }
        let (u, s) = if a.signed { (b, a) } else { (a, b) };
        if u.bits >= s.bits {
            u
        } else {
            s
        }
    }
}

/// What a type name in a cast, `sizeof` or declaration denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    Int(IntTy),
    Void,
    /// A struct, union or a typedef we do not know.
    Other,
}

/// The typedefs the formats use, where their width is the same on every
/// x86-64 kernel.
pub(crate) fn typedef(name: &str) -> Option<IntTy> {
    Some(match name {
        "u8" | "__u8" | "uint8_t" | "u_int8_t" | "unchar" => IntTy::UCHAR,
        "s8" | "__s8" | "int8_t" => IntTy::CHAR,
        "u16" | "__u16" | "uint16_t" | "u_int16_t" | "__le16" | "__be16" | "umode_t" | "ushort" => {
            IntTy::USHORT
        }
        "s16" | "__s16" | "int16_t" => IntTy::SHORT,
        "u32" | "__u32" | "uint32_t" | "u_int32_t" | "__le32" | "__be32" | "uint" | "gfp_t"
        | "dev_t" | "uid_t" | "gid_t" | "fmode_t" | "blk_opf_t" | "__kernel_dev_t" => IntTy::UINT,
        "s32" | "__s32" | "int32_t" | "pid_t" | "clockid_t" | "__kernel_rwf_t" | "key_serial_t" => {
            IntTy::INT
        }
        "u64" | "__u64" | "uint64_t" | "u_int64_t" | "__le64" | "__be64" | "sector_t"
        | "phys_addr_t" | "dma_addr_t" | "resource_size_t" | "blkcnt_t" | "size_t"
        | "__kernel_size_t" | "uintptr_t" | "ulong" | "netdev_features_t" => IntTy::ULONG,
        "s64" | "__s64" | "int64_t" | "loff_t" | "ktime_t" | "time64_t" | "ssize_t"
        | "ptrdiff_t" | "intptr_t" | "__kernel_ssize_t" => IntTy::LONG,
        "bool" | "_Bool" => IntTy::BOOL,
        _ => return None,
    })
}

/// Whether an identifier is a C keyword that starts a type name.
pub(crate) fn is_type_keyword(w: &str) -> bool {
    matches!(
        w,
        "void"
            | "char"
            | "short"
            | "int"
            | "long"
            | "signed"
            | "unsigned"
            | "const"
            | "volatile"
            | "struct"
            | "union"
            | "enum"
            | "__signed__"
    )
}

/// The type named by the words of a type name (without its `*`s):
/// `unsigned long`, `const char`, `struct page`, `u32`.
pub(crate) fn base_of(words: &[String]) -> Base {
    let mut signed = None;
    let mut longs = 0;
    let mut kind: Option<&str> = None;
    let mut named = None;
    for w in words {
        match w.as_str() {
            "const" | "volatile" => {}
            "signed" | "__signed__" => signed = Some(true),
            "unsigned" => signed = Some(false),
            "long" => longs += 1,
            "char" | "short" | "int" | "void" => kind = Some(w),
            "struct" | "union" | "enum" => return Base::Other,
            other => named = Some(other),
        }
    }
    if let Some(n) = named {
        if signed.is_some() || longs > 0 || kind.is_some() {
            return Base::Other;
        }
        return typedef(n).map(Base::Int).unwrap_or(Base::Other);
    }
    let s = signed.unwrap_or(true);
    Base::Int(match (kind, longs) {
        (Some("void"), 0) if signed.is_none() => return Base::Void,
        (Some("char"), 0) => IntTy::new(8, s),
        (Some("short"), 0) => IntTy::new(16, s),
        (Some("int") | None, 0) if signed.is_some() || kind.is_some() => IntTy::new(32, s),
        (Some("int") | None, 1 | 2) => IntTy::new(64, s),
        _ => return Base::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn names_and_conversions() {
        assert_eq!(base_of(&words("unsigned long")), Base::Int(IntTy::ULONG));
        assert_eq!(base_of(&words("long long")), Base::Int(IntTy::LONG));
        assert_eq!(base_of(&words("unsigned")), Base::Int(IntTy::UINT));
        assert_eq!(base_of(&words("const char")), Base::Int(IntTy::CHAR));
        assert_eq!(base_of(&words("void")), Base::Void);
        assert_eq!(base_of(&words("struct page")), Base::Other);
        assert_eq!(base_of(&words("gfp_t")), Base::Int(IntTy::UINT));
        assert_eq!(base_of(&words("foo_t")), Base::Other);
        assert_eq!(IntTy::common(IntTy::UINT, IntTy::LONG), IntTy::LONG);
        assert_eq!(IntTy::common(IntTy::ULONG, IntTy::LONG), IntTy::ULONG);
        assert_eq!(IntTy::common(IntTy::UCHAR, IntTy::USHORT), IntTy::INT);
        assert_eq!(IntTy::common(IntTy::INT, IntTy::UINT), IntTy::UINT);
        assert_eq!(IntTy::INT.norm(0xffff_ffff), u64::MAX);
        assert_eq!(IntTy::UINT.norm(u64::MAX), 0xffff_ffff);
        assert_eq!(IntTy::BOOL.norm(4), 1);
    }
}
