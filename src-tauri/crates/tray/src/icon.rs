//! The tray's picture: the app icon (decoded from its PNGs at build time) with a dot
//! in its lower right corner, amber when something is due soon and red when
//! something needs you, sent as the item's IconPixmap (ARGB32, network byte order).

use crate::model::Worst;

/// The app icon in the sizes the item offers: (width, height, RGBA).
pub const APP_ICONS: &[(u32, u32, &[u8])] = include!(concat!(env!("OUT_DIR"), "/icons.rs"));

/// The dot's color for a worst state (RGBA), none when all is fine.
pub fn dot(worst: Worst) -> Option<[u8; 4]> {
    match worst {
        Worst::AllFine => None,
        Worst::DueSoon => Some([0xf5, 0x9e, 0x0b, 0xff]),
        Worst::NeedsYou => Some([0xdc, 0x26, 0x26, 0xff]),
    }
}

/// An icon's RGBA with the dot for `worst` drawn in its lower right corner, in a
/// thin white ring so it shows on any panel.
pub fn badged(rgba: &[u8], width: u32, height: u32, worst: Worst) -> Vec<u8> {
    let mut rgba = rgba.to_vec();
    let Some(color) = dot(worst) else {
        return rgba;
    };
    let r = width.min(height) as f32 * 0.22;
    let (cx, cy) = (width as f32 - r - 1.0, height as f32 - r - 1.0);
    for y in 0..height {
        for x in 0..width {
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
            let i = ((y * width + x) * 4) as usize;
            if d <= r {
                rgba[i..i + 4].copy_from_slice(&color);
            } else if d <= r + 1.5 {
                rgba[i..i + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
            }
        }
    }
    rgba
}

/// RGBA to the StatusNotifierItem's ARGB32 in network byte order: A, R, G, B.
pub fn argb(mut rgba: Vec<u8>) -> Vec<u8> {
    for pixel in rgba.chunks_exact_mut(4) {
        pixel.rotate_right(1);
    }
    rgba
}

/// The item's IconPixmap for a worst state: every size of the app icon, badged.
pub fn pixmaps(worst: Worst) -> Vec<ksni::Icon> {
    APP_ICONS
        .iter()
        .map(|&(width, height, rgba)| ksni::Icon {
            width: width as i32,
            height: height as i32,
            data: argb(badged(rgba, width, height, worst)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pixel a fifth of the way in from the lower right corner (inside the dot at
    /// every size), as ARGB.
    fn in_the_dot(icon: &ksni::Icon) -> [u8; 4] {
        let (x, y) = (
            icon.width - 1 - icon.width / 5,
            icon.height - 1 - icon.height / 5,
        );
        let i = ((y * icon.width + x) * 4) as usize;
        icon.data[i..i + 4].try_into().unwrap()
    }

    #[test]
    fn every_size_carries_the_dot_of_the_worst_state_in_argb() {
        assert!(APP_ICONS.len() >= 2, "several sizes");
        for &(w, h, rgba) in APP_ICONS {
            assert_eq!(rgba.len(), (w * h * 4) as usize, "{w}x{h} is RGBA");
        }
        let fine = pixmaps(Worst::AllFine);
        let soon = pixmaps(Worst::DueSoon);
        let needs = pixmaps(Worst::NeedsYou);
        for ((fine, soon), needs) in fine.iter().zip(&soon).zip(&needs) {
            assert_eq!(in_the_dot(soon), [0xff, 0xf5, 0x9e, 0x0b], "amber");
            assert_eq!(in_the_dot(needs), [0xff, 0xdc, 0x26, 0x26], "red");
            assert_ne!(in_the_dot(fine), in_the_dot(soon));
            // The rest of the icon is the app's: the upper left corner is untouched.
            assert_eq!(&fine.data[..4], &needs.data[..4]);
        }
    }

    #[test]
    fn argb_moves_alpha_first() {
        assert_eq!(argb(vec![1, 2, 3, 4, 5, 6, 7, 8]), [4, 1, 2, 3, 8, 5, 6, 7]);
    }
}
