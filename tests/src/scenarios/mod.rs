//! One scenario per product in the design's table "What real products ask of
//! it". Each configures keyward as that product and walks its documented
//! behaviour end to end over the given store.

mod product_a;
mod product_b;
mod product_c;
mod product_d;
mod product_e;

pub use product_a::product_a;
pub use product_b::product_b;
pub use product_c::product_c;
pub use product_d::product_d;
pub use product_e::product_e;
