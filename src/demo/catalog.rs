//! The demo shop's product catalog: fixed, computed from the id, so ids are stable
//! across runs and servers and no table is kept.

use serde::Serialize;

/// Products in the catalog, ids `1..=PRODUCTS`.
pub const PRODUCTS: u64 = 100;
/// Products on one listing page.
pub const PAGE_SIZE: u64 = 10;

const ADJECTIVES: [&str; 10] = [
    "Sturdy", "Quiet", "Bright", "Compact", "Classic", "Rugged", "Smart", "Light", "Vintage",
    "Deluxe",
];
const NOUNS: [&str; 10] = [
    "Kettle", "Lamp", "Backpack", "Mug", "Keyboard", "Chair", "Notebook", "Umbrella", "Headset",
    "Bottle",
];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Product {
    pub id: u64,
    pub name: String,
    /// Always more than 0.
    pub price: f64,
}

/// The product with `id`, if it exists.
pub fn product(id: u64) -> Option<Product> {
    if !(1..=PRODUCTS).contains(&id) {
        return None;
    }
    let i = (id - 1) as usize;
    let name = format!("{} {}", ADJECTIVES[i % 10], NOUNS[(i / 10 + i * 3) % 10]);
    // Between 1.99 and 91.99, deterministic, never 0.
    let cents = 199 + (id * 7919 % 9000);
    Some(Product {
        id,
        name,
        price: cents as f64 / 100.0,
    })
}

/// The products on listing page `page` (1-based; pages past the catalog are empty).
pub fn page(page: u64) -> Vec<Product> {
    let first = page
        .saturating_sub(1)
        .saturating_mul(PAGE_SIZE)
        .saturating_add(1);
    (first..first.saturating_add(PAGE_SIZE))
        .filter_map(product)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_hold_ten_resolvable_products_with_positive_prices() {
        for p in 1..=PRODUCTS / PAGE_SIZE {
            let items = page(p);
            assert_eq!(items.len(), PAGE_SIZE as usize, "page {p}");
            for item in items {
                assert!(item.price > 0.0);
                assert_eq!(product(item.id), Some(item));
            }
        }
        assert!(page(PRODUCTS / PAGE_SIZE + 1).is_empty());
        assert!(page(u64::MAX).is_empty());
        assert_eq!(product(0), None);
        assert_eq!(product(PRODUCTS + 1), None);
    }
}
