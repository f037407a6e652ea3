//! Random bytes from the kernel's vDSO `getrandom` (Linux 6.11 and later),
//! falling back to the `getrandom` system call.
//!
//! The vDSO function is the kernel's own generator run in user space: a
//! ChaCha20 "fast key erasure" generator per thread, reseeded on the
//! kernel's schedule, in a state the kernel allocates the rules for. It
//! costs tens of nanoseconds where the system call costs hundreds.
//!
//! **Fork safety comes from the kernel, not from us.** Each thread's state
//! lives in memory mapped with the protection and flags the kernel asks for
//! (`MAP_DROPPABLE`, which the kernel wipes in a forked child and may drop
//! under memory pressure); a wiped state makes the next call reseed from
//! the kernel. So a parent and its children never share a stream.
//!
//! Rules the kernel documents and this module keeps:
//! - the state is allocated with `mmap` using the kernel's `mmap_prot` and
//!   `mmap_flags` (a page per thread here, so it never straddles a page);
//! - one state per thread (it may be shared with that thread's signal
//!   handlers, which the kernel allows);
//! - on any failure (no vDSO function, a refused parameter query, `mmap`
//!   failing, thread-local storage already torn down, a negative return),
//!   the bytes come from the system call instead.

use std::cell::Cell;
use std::ffi::{c_uint, c_void};
use std::sync::OnceLock;

/// `ssize_t getrandom(void *buf, size_t len, unsigned flags, void
/// *opaque_state, size_t opaque_len)`.
type VGetrandom = unsafe extern "C" fn(*mut c_void, usize, c_uint, *mut c_void, usize) -> isize;

/// `struct vgetrandom_opaque_params` (include/uapi/linux/random.h).
#[repr(C)]
#[derive(Default)]
struct OpaqueParams {
    size_of_opaque_state: u32,
    mmap_prot: u32,
    mmap_flags: u32,
    reserved: [u32; 13],
}

struct Vdso {
    f: VGetrandom,
    state_len: usize,
    prot: i32,
    flags: i32,
    page: usize,
}

static VDSO: OnceLock<Option<Vdso>> = OnceLock::new();

fn vdso() -> Option<&'static Vdso> {
    VDSO.get_or_init(|| {
        if std::env::var_os("KEYSTRATA_NO_VDSO_GETRANDOM").is_some() {
            return None;
        }
        let sym = crate::vdso::lookup("__vdso_getrandom")?;
        // SAFETY: the symbol is the kernel's getrandom vDSO function, whose
        // C signature is `VGetrandom`.
        let f: VGetrandom = unsafe { std::mem::transmute::<*const c_void, VGetrandom>(sym) };
        let mut params = OpaqueParams::default();
        // SAFETY: the documented parameter query: NULL buffer, length 0,
        // flags 0, opaque_len ~0; the kernel fills `params`.
        let rc = unsafe {
            f(
                std::ptr::null_mut(),
                0,
                0,
                (&mut params as *mut OpaqueParams).cast(),
                usize::MAX,
            )
        };
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
        let state_len = params.size_of_opaque_state as usize;
        if rc != 0 || state_len == 0 || state_len > page {
            return None;
        }
        Some(Vdso {
            f,
            state_len,
            prot: params.mmap_prot as i32,
            flags: params.mmap_flags as i32,
            page,
        })
    })
    .as_ref()
}

/// A thread's vDSO state: one page mapped as the kernel asks, unmapped
/// when the thread ends. Null: not mapped yet; [`NO_STATE`]: mapping
/// failed, use the system call.
struct State(Cell<*mut c_void>);

const NO_STATE: *mut c_void = usize::MAX as *mut c_void;

impl Drop for State {
    fn drop(&mut self) {
        let p = self.0.get();
        if let (false, Some(v)) = (p.is_null() || p == NO_STATE, vdso()) {
            // SAFETY: `p` is the page this thread mapped, used by no one
            // else, and the thread is ending.
            unsafe { libc::munmap(p, v.page) };
        }
    }
}

thread_local! {
    static STATE: State = const { State(Cell::new(std::ptr::null_mut())) };
}

/// This thread's state, mapping it on first use.
fn thread_state(v: &Vdso) -> Option<*mut c_void> {
    STATE
        .try_with(|s| {
            let p = s.0.get();
            if p == NO_STATE {
                return None;
            }
            if !p.is_null() {
                return Some(p);
            }
            // SAFETY: a fresh anonymous mapping with exactly the kernel's
            // protection and flags (MAP_DROPPABLE | MAP_ANONYMOUS: a
            // mapping type of its own, which MAP_PRIVATE would contradict);
            // checked for MAP_FAILED below.
            let p = unsafe { libc::mmap(std::ptr::null_mut(), v.page, v.prot, v.flags, -1, 0) };
            if p == libc::MAP_FAILED {
                s.0.set(NO_STATE);
                return None;
            }
            s.0.set(p);
            Some(p)
        })
        .ok()
        .flatten()
}

/// Whether random bytes come from the vDSO on this thread: the kernel has
/// the function, this thread's state is mapped, and a call through it
/// succeeds. (Otherwise [`fill_random`] uses the system call.)
pub fn vdso_getrandom_available() -> bool {
    let Some(v) = vdso() else { return false };
    let Some(state) = thread_state(v) else {
        return false;
    };
    let mut b = [0u8; 1];
    // SAFETY: as in `fill_random`.
    unsafe { (v.f)(b.as_mut_ptr().cast(), 1, 0, state, v.state_len) == 1 }
}

/// Fills `buf` with random bytes from the kernel (the vDSO where it has
/// one, the system call otherwise). Fork-safe: see the module docs.
#[inline]
pub fn fill_random(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    let mut done = 0;
    if let Some(v) = vdso() {
        if let Some(state) = thread_state(v) {
            while done < buf.len() {
                let rest = &mut buf[done..];
                // SAFETY: `rest` is writable for its length; `state` is this
                // thread's own state of the size the kernel asked for,
                // inside one page.
                let n =
                    unsafe { (v.f)(rest.as_mut_ptr().cast(), rest.len(), 0, state, v.state_len) };
                if n <= 0 {
                    break;
                }
                done += (n as usize).min(rest.len());
            }
        }
    }
    if done < buf.len() {
        getrandom::fill(&mut buf[done..])?;
    }
    Ok(())
}
