//! Finding a function in the vDSO, the small shared object the Linux kernel
//! maps into every process (what `parse_vdso.c` in the kernel's selftests
//! does, for 64-bit little-endian ELF).
//!
//! Every read is of memory the kernel mapped read-only for the life of the
//! process, at addresses derived from the ELF headers found there; each is
//! bounds-checked against the image's first `PT_LOAD` segment before it is
//! made.

use std::ffi::c_void;

#[repr(C)]
struct Ehdr {
    e_ident: [u8; 16],
    e_type: u16,
    e_machine: u16,
    e_version: u32,
    e_entry: u64,
    e_phoff: u64,
    e_shoff: u64,
    e_flags: u32,
    e_ehsize: u16,
    e_phentsize: u16,
    e_phnum: u16,
    e_shentsize: u16,
    e_shnum: u16,
    e_shstrndx: u16,
}

#[repr(C)]
struct Phdr {
    p_type: u32,
    p_flags: u32,
    p_offset: u64,
    p_vaddr: u64,
    p_paddr: u64,
    p_filesz: u64,
    p_memsz: u64,
    p_align: u64,
}

#[repr(C)]
struct Dyn {
    d_tag: i64,
    d_val: u64,
}

#[repr(C)]
struct Sym {
    st_name: u32,
    st_info: u8,
    st_other: u8,
    st_shndx: u16,
    st_value: u64,
    st_size: u64,
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const DT_NULL: i64 = 0;
const DT_HASH: i64 = 4;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_GNU_HASH: i64 = 0x6fff_fef5;
const STT_FUNC: u8 = 2;

/// The image: its base address and the extent of its one loaded segment,
/// for bounds checks.
struct Image {
    base: usize,
    len: usize,
    load_offset: usize,
}

impl Image {
    /// A pointer to `size` bytes at `addr`, if they lie inside the image.
    fn at(&self, addr: usize, size: usize) -> Option<usize> {
        let end = addr.checked_add(size)?;
        (addr >= self.base && end <= self.base + self.len).then_some(addr)
    }

    /// # Safety
    /// `at` checked that the bytes lie in the mapped image; the vDSO is
    /// mapped for the whole life of the process and never written.
    unsafe fn read<T>(&self, addr: usize) -> Option<T> {
        let p = self.at(addr, std::mem::size_of::<T>())?;
        // SAFETY: in bounds (checked above), readable for the process's
        // life; read_unaligned has no alignment requirement.
        Some(unsafe { std::ptr::read_unaligned(p as *const T) })
    }
}

/// The address of the function `name` in this process's vDSO, if the
/// kernel provides one with that name.
pub(crate) fn lookup(name: &str) -> Option<*const c_void> {
    // SAFETY: getauxval has no preconditions; 0 means "no vDSO".
    let base = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
    if base == 0
        || cfg!(not(all(
            target_pointer_width = "64",
            target_endian = "little"
        )))
    {
        return None;
    }
    // The ELF header first, bounded by its own size; then the real extent.
    let probe = Image {
        base,
        len: std::mem::size_of::<Ehdr>(),
        load_offset: 0,
    };
    // SAFETY: the kernel maps at least the ELF header at `base`.
    let eh: Ehdr = unsafe { probe.read(base)? };
    if eh.e_ident[..4] != *b"\x7fELF" || eh.e_ident[4] != 2 || eh.e_ident[5] != 1 {
        return None;
    }
    if usize::from(eh.e_phentsize) != std::mem::size_of::<Phdr>() {
        return None;
    }
    let phoff = usize::try_from(eh.e_phoff).ok()?;
    let phbytes = usize::from(eh.e_phnum) * std::mem::size_of::<Phdr>();
    // The program headers lie within the first page, mapped with the
    // header.
    if phoff.checked_add(phbytes)? > 4096 {
        return None;
    }
    let headers = Image {
        base,
        len: 4096,
        load_offset: 0,
    };
    let (mut load, mut dynamic) = (None, None);
    for i in 0..usize::from(eh.e_phnum) {
        // SAFETY: within the first page (checked above).
        let ph: Phdr = unsafe { headers.read(base + phoff + i * std::mem::size_of::<Phdr>())? };
        match ph.p_type {
            PT_LOAD if load.is_none() => load = Some(ph),
            PT_DYNAMIC => dynamic = Some(ph),
            _ => {}
        }
    }
    let (load, dynamic) = (load?, dynamic?);
    let image = Image {
        base,
        len: usize::try_from(load.p_memsz).ok()?,
        load_offset: base
            .wrapping_add(usize::try_from(load.p_offset).ok()?)
            .wrapping_sub(usize::try_from(load.p_vaddr).ok()?),
    };
    let (mut hash, mut gnu_hash, mut strtab, mut symtab) = (None, None, None, None);
    let dyn_at = base.checked_add(usize::try_from(dynamic.p_offset).ok()?)?;
    for i in 0.. {
        // SAFETY: bounds-checked by `read`.
        let d: Dyn = unsafe { image.read(dyn_at + i * std::mem::size_of::<Dyn>())? };
        let addr = image.load_offset.wrapping_add(d.d_val as usize);
        match d.d_tag {
            DT_NULL => break,
            DT_HASH => hash = Some(addr),
            DT_GNU_HASH => gnu_hash = Some(addr),
            DT_STRTAB => strtab = Some(addr),
            DT_SYMTAB => symtab = Some(addr),
            _ => {}
        }
    }
    let (strtab, symtab) = (strtab?, symtab?);
    let count = match (hash, gnu_hash) {
        // DT_HASH: nbucket, nchain; nchain is the number of symbols.
        // SAFETY: bounds-checked by `read`.
        (Some(h), _) => (unsafe { image.read::<u32>(h + 4)? }) as usize,
        (None, Some(g)) => gnu_hash_count(&image, g)?,
        (None, None) => return None,
    };
    for i in 0..count.min(4096) {
        // SAFETY: bounds-checked by `read`.
        let sym: Sym = unsafe { image.read(symtab + i * std::mem::size_of::<Sym>())? };
        if sym.st_info & 0xf != STT_FUNC || sym.st_shndx == 0 {
            continue;
        }
        if name_is(&image, strtab + sym.st_name as usize, name) {
            let addr = image.load_offset.wrapping_add(sym.st_value as usize);
            return image.at(addr, 1).map(|a| a as *const c_void);
        }
    }
    None
}

/// Whether the NUL-terminated string at `addr` is `name`.
fn name_is(image: &Image, addr: usize, name: &str) -> bool {
    for (i, want) in name.bytes().chain(std::iter::once(0)).enumerate() {
        // SAFETY: bounds-checked by `read`.
        match unsafe { image.read::<u8>(addr + i) } {
            Some(b) if b == want => {}
            _ => return false,
        }
    }
    true
}

/// The number of symbols a `DT_GNU_HASH` table covers: one past the
/// highest index any bucket's chain reaches.
fn gnu_hash_count(image: &Image, table: usize) -> Option<usize> {
    // SAFETY (every read below): bounds-checked by `read`.
    let nbuckets = unsafe { image.read::<u32>(table)? } as usize;
    let symoffset = unsafe { image.read::<u32>(table + 4)? } as usize;
    let bloom_size = unsafe { image.read::<u32>(table + 8)? } as usize;
    let buckets = table + 16 + bloom_size * 8;
    let mut last = 0usize;
    for b in 0..nbuckets {
        last = last.max(unsafe { image.read::<u32>(buckets + b * 4)? } as usize);
    }
    if last < symoffset {
        return Some(symoffset);
    }
    let chain = buckets + nbuckets * 4;
    loop {
        let h = unsafe { image.read::<u32>(chain + (last - symoffset) * 4)? };
        if h & 1 == 1 {
            return Some(last + 1);
        }
        last += 1;
    }
}
