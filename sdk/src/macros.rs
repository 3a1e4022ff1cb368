//! `export_strategy!`: turns a [`Strategy`](crate::Strategy) into a plugin.

/// Exports a [`Strategy`](crate::Strategy) as a Candlewick plugin: writes the
/// manifest custom section and every ABI export (`cw_abi_version`,
/// `cw_alloc`, `cw_init`, `cw_io_layout`, `cw_on_batch`, `cw_snapshot`,
/// `cw_restore`). Use it once, at the crate root of a `cdylib`.
///
/// It also defines `pub const CW_MANIFEST: Manifest`, for tests with
/// [`testing::Harness`](crate::testing::Harness). The exports themselves
/// exist only when compiling for `wasm32`.
///
/// Parameters are `name: kind = default`, then optionally `in min..=max`,
/// then optionally a doc string, each ending in `;`. Kinds are `int`,
/// `float` and `bool`. Indicator items may use integer parameters in braces.
///
/// ```
/// use candlewick_sdk::{export_strategy, Bar, InitError, Params, Signal, Strategy};
///
/// pub struct Cross { fast: i64 }
/// impl Strategy for Cross {
///     fn init(p: &Params<'_>) -> Result<Self, InitError> {
///         Ok(Cross { fast: p.int("fast")? })
///     }
///     fn on_bar(&mut self, _bar: &Bar<'_>) -> Option<Signal> { None }
/// }
///
/// export_strategy! {
///     strategy: Cross,
///     name: "cross",
///     version: "0.1.0",
///     description: "Example",
///     params: {
///         fast: int = 10 in 2..=500, "Fast period";
///         slow: int = 20 in 3..=1000;
///         scale: float = 0.5;
///         long_only: bool = true, "Never sell short";
///     },
///     indicators: ["sma({fast})", "sma({slow})"],
///     models: [],
/// }
///
/// assert_eq!(CW_MANIFEST.params.len(), 4);
/// assert_eq!(CW_MANIFEST.params[0].max, "500");
/// ```
#[macro_export]
macro_rules! export_strategy {
    (
        strategy: $strategy:ty,
        name: $name:literal,
        version: $version:literal,
        $(description: $description:literal,)?
        params: {
            $( $pname:ident : $kind:ident = $default:literal
               $(in $min:literal ..= $max:literal)?
               $(, $doc:literal)? ; )*
        },
        indicators: [ $($indicator:literal),* $(,)? ],
        models: [ $($model:literal),* $(,)? ] $(,)?
    ) => {
        /// This plugin's manifest, as written to the `cw_manifest` section.
        pub const CW_MANIFEST: $crate::manifest::Manifest = $crate::manifest::Manifest {
            name: $name,
            version: $version,
            description: $crate::__cw_or_empty!($($description)?),
            params: &[ $(
                $crate::manifest::ParamSpec {
                    name: stringify!($pname),
                    kind: $crate::__cw_kind!($kind),
                    default: stringify!($default),
                    min: $crate::__cw_or_empty!($(stringify!($min))?),
                    max: $crate::__cw_or_empty!($(stringify!($max))?),
                    doc: $crate::__cw_or_empty!($($doc)?),
                },
            )* ],
            indicators: &[ $($indicator),* ],
            models: &[ $($model),* ],
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__rt::{GuestCell, Runtime};

            const LEN: usize = $crate::manifest::encoded_len(&CW_MANIFEST);

            #[unsafe(link_section = "cw_manifest")]
            #[used]
            static CW_MANIFEST_SECTION: [u8; LEN] = $crate::manifest::encode::<LEN>(&CW_MANIFEST);

            static RT: GuestCell<Runtime<$strategy>> = GuestCell::new(Runtime::new());

            #[unsafe(no_mangle)]
            extern "C" fn cw_abi_version() -> u32 {
                $crate::abi::ABI_VERSION
            }

            #[unsafe(no_mangle)]
            extern "C" fn cw_alloc(len: u32) -> u32 {
                // SAFETY: exports never nest (see `GuestCell::with`).
                unsafe { RT.with(|rt| rt.alloc(len)) }
            }

            #[unsafe(no_mangle)]
            extern "C" fn cw_init(ptr: u32, len: u32) -> i32 {
                // SAFETY: exports never nest (see `GuestCell::with`).
                unsafe { RT.with(|rt| rt.init(&CW_MANIFEST, ptr, len)) }
            }

            #[unsafe(no_mangle)]
            extern "C" fn cw_io_layout() -> u32 {
                // SAFETY: exports never nest (see `GuestCell::with`).
                unsafe { RT.with(|rt| rt.io_layout()) }
            }

            #[unsafe(no_mangle)]
            extern "C" fn cw_on_batch(n_bars: u32) -> i32 {
                // SAFETY: exports never nest (see `GuestCell::with`).
                unsafe { RT.with(|rt| rt.on_batch(n_bars)) }
            }

            #[unsafe(no_mangle)]
            extern "C" fn cw_snapshot() -> i64 {
                // SAFETY: exports never nest (see `GuestCell::with`).
                unsafe { RT.with(|rt| rt.snapshot()) }
            }

            #[unsafe(no_mangle)]
            extern "C" fn cw_restore(ptr: u32, len: u32) -> i32 {
                // SAFETY: exports never nest (see `GuestCell::with`).
                unsafe { RT.with(|rt| rt.restore(ptr, len)) }
            }
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cw_or_empty {
    () => {
        ""
    };
    ($s:expr) => {
        $s
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cw_kind {
    (int) => {
        $crate::manifest::ParamKind::Int
    };
    (float) => {
        $crate::manifest::ParamKind::Float
    };
    (bool) => {
        $crate::manifest::ParamKind::Bool
    };
    ($other:ident) => {
        compile_error!(concat!(
            "unknown parameter kind `",
            stringify!($other),
            "`: use int, float or bool"
        ))
    };
}
