//! HTTP/1.1 message heads and body framing (RFC 9112), shared by the server and client sides.
//!
//! A proxy is where two parsers that disagree about where a message ends become a request
//! smuggling hole, so the rules here are strict: a request announcing both `Content-Length` and
//! `Transfer-Encoding`, conflicting lengths, a transfer coding other than `chunked`, or chunk
//! syntax outside the grammar is refused rather than guessed at.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};

/// The longest message head accepted, request line or status line included.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// The most header fields in one head.
const MAX_HEADERS: usize = 128;
/// Room left in a parsed header map for the fields a proxy adds (request id, forwarding
/// fields, `Via`, framing, `Date`), so that adding them does not grow the map.
const ROOM_FOR_ADDED_FIELDS: usize = 8;
/// The longest chunk extension, and the most trailer bytes, accepted in a chunked body.
const MAX_CHUNK_EXTENSION: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the peer closes (responses only).
    UntilClose,
}

/// Why a message head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeadError {
    /// Not valid HTTP/1.x syntax, or framing that could be read two ways.
    #[error("{0}")]
    Malformed(&'static str),
    /// Longer than [`MAX_HEAD`], or more than the header fields we keep.
    #[error(
        "the message head is larger than {MAX_HEAD} bytes or has more than {MAX_HEADERS} fields"
    )]
    TooLarge,
    /// A transfer coding we do not decode.
    #[error("only the chunked transfer coding is supported")]
    UnsupportedCoding,
    /// Not HTTP/1.0 or HTTP/1.1.
    #[error("only HTTP/1.0 and HTTP/1.1 are spoken on this connection")]
    UnsupportedVersion,
}

impl HeadError {
    /// The status a server answers this error with.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedCoding => StatusCode::NOT_IMPLEMENTED,
            Self::UnsupportedVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
        }
    }
}

/// A parsed request head and what it says about the connection.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) parts: http::request::Parts,
    pub(crate) framing: Framing,
    /// Whether the client wants the connection kept open after the response.
    pub(crate) keep_alive: bool,
    /// `Expect: 100-continue` on a request with a body.
    pub(crate) expects_continue: bool,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) parts: http::response::Parts,
    pub(crate) framing: Framing,
    /// Whether the connection may carry another request after this response.
    pub(crate) reusable: bool,
}

/// What the framing header fields of a head said, gathered while the fields are read.
#[derive(Default)]
struct FramingFields {
    content_length: Option<u64>,
    /// Transfer codings seen, in order: `Some(true)` when `chunked` is the last and only one.
    transfer_encoding: Option<Codings>,
    hosts: usize,
    close: bool,
    keep_alive: bool,
    expects_continue: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codings {
    /// Exactly `chunked`.
    Chunked,
    /// `chunked` last, after codings we do not decode.
    ChunkedAfterOthers,
    /// `chunked` is not the last coding.
    NotChunkedLast,
}

/// Parses a request head at the start of `buf`, removing it. `None`: more bytes are needed.
pub(crate) fn parse_request(buf: &mut BytesMut) -> Result<Option<RequestHead>, HeadError> {
    let mut slots = unfilled_slots();
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(httparse::Error::Version) => return Err(HeadError::UnsupportedVersion),
        Err(_) => {
            return Err(HeadError::Malformed(
                "the request head is not valid HTTP/1.1",
            ));
        }
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let base = buf.as_ptr() as usize;
    let method = request
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or(HeadError::Malformed("the request method is not a token"))?;
    let version = http_version(request.version)?;
    let target = request
        .path
        .map(|path| offset_of(base, path.as_bytes()))
        .ok_or(HeadError::Malformed("the request has no target"))?;
    let fields = field_ranges(base, request.headers)?;

    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target))
        .map_err(|_| HeadError::Malformed("the request target is not a valid URI"))?;
    if method == Method::CONNECT || uri.authority().is_some() && uri.path_and_query().is_none() {
        return Err(HeadError::Malformed(
            "CONNECT and authority-form targets are not proxied",
        ));
    }
    let (headers, seen) = header_map(&head, fields)?;

    let framing = match (seen.transfer_encoding, seen.content_length) {
        (Some(_), Some(_)) => {
            return Err(HeadError::Malformed(
                "the request has both Content-Length and Transfer-Encoding",
            ));
        }
        (Some(_), None) if version == Version::HTTP_10 => {
            return Err(HeadError::Malformed(
                "Transfer-Encoding is not allowed in HTTP/1.0",
            ));
        }
        (Some(Codings::Chunked), None) => Framing::Chunked,
        (Some(Codings::ChunkedAfterOthers), None) => return Err(HeadError::UnsupportedCoding),
        (Some(Codings::NotChunkedLast), None) => {
            return Err(HeadError::Malformed(
                "the request's last transfer coding is not chunked",
            ));
        }
        (None, Some(0) | None) => Framing::Empty,
        (None, Some(length)) => Framing::Length(length),
    };
    if version == Version::HTTP_11 && seen.hosts != 1 {
        return Err(HeadError::Malformed(
            "an HTTP/1.1 request needs exactly one Host field",
        ));
    }

    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    let keep_alive = if version == Version::HTTP_11 {
        !seen.close
    } else {
        seen.keep_alive && !seen.close
    };
    Ok(Some(RequestHead {
        parts,
        framing,
        keep_alive,
        expects_continue: seen.expects_continue && framing != Framing::Empty,
    }))
}

/// Parses a response head at the start of `buf`, removing it; `None`: more bytes are needed.
///
/// Interim (1xx) responses are consumed and skipped: the request was already sent whole.
pub(crate) fn parse_response(
    buf: &mut BytesMut,
    request_method: &Method,
) -> Result<Option<ResponseHead>, HeadError> {
    loop {
        let mut slots = unfilled_slots();
        let mut response = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut slots,
        ) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(HeadError::TooLarge);
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(httparse::Error::Version) => return Err(HeadError::UnsupportedVersion),
            Err(_) => {
                return Err(HeadError::Malformed(
                    "the response head is not valid HTTP/1.1",
                ));
            }
        };
        let status = response
            .code
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or(HeadError::Malformed(
                "the response status is not a valid code",
            ))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(HeadError::Malformed(
                "the upstream switched protocols, which was not asked for",
            ));
        }
        if status.is_informational() {
            buf.advance(len);
            continue;
        }
        let version = http_version(response.version)?;
        let fields = field_ranges(buf.as_ptr() as usize, response.headers)?;

        let head = buf.split_to(len).freeze();
        let (headers, seen) = header_map(&head, fields)?;
        let bodiless = *request_method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let framing = match (bodiless, seen.transfer_encoding, seen.content_length) {
            (true, _, _) | (false, None, Some(0)) => Framing::Empty,
            (false, Some(Codings::Chunked), _) => Framing::Chunked,
            (false, Some(Codings::ChunkedAfterOthers), _) => {
                return Err(HeadError::UnsupportedCoding);
            }
            (false, Some(Codings::NotChunkedLast), _) | (false, None, None) => Framing::UntilClose,
            (false, None, Some(length)) => Framing::Length(length),
        };
        // A response framed by both is read as chunked, and its connection not trusted again.
        let ambiguous = seen.transfer_encoding.is_some() && seen.content_length.is_some();
        let reusable = version == Version::HTTP_11
            && !seen.close
            && !ambiguous
            && framing != Framing::UntilClose;

        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = status;
        parts.version = version;
        parts.headers = headers;
        return Ok(Some(ResponseHead {
            parts,
            framing,
            reusable,
        }));
    }
}

/// Room for the header fields of one head, left unwritten: httparse fills only as many slots
/// as the head has fields. Writing all 128 first cost about 350 instructions per head, as
/// much as httparse spends parsing a short one.
fn unfilled_slots<'buf>() -> [MaybeUninit<httparse::Header<'buf>>; MAX_HEADERS] {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

fn http_version(minor: Option<u8>) -> Result<Version, HeadError> {
    match minor {
        Some(0) => Ok(Version::HTTP_10),
        Some(1) => Ok(Version::HTTP_11),
        _ => Err(HeadError::UnsupportedVersion),
    }
}

/// Where `part` lies inside the buffer starting at address `base`.
fn offset_of(base: usize, part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - base;
    start..start + part.len()
}

/// Each field's name, made once, and where its value lies in the head.
fn field_ranges(
    base: usize,
    fields: &[httparse::Header<'_>],
) -> Result<Vec<(HeaderName, Range<usize>)>, HeadError> {
    let mut ranges = Vec::with_capacity(fields.len());
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| HeadError::Malformed("a header field name is not a token"))?;
        ranges.push((name, offset_of(base, field.value)));
    }
    Ok(ranges)
}

/// The header map, its values sharing the head's bytes, and what the framing fields said.
fn header_map(
    head: &Bytes,
    fields: Vec<(HeaderName, Range<usize>)>,
) -> Result<(HeaderMap, FramingFields), HeadError> {
    let mut headers = HeaderMap::with_capacity(fields.len() + ROOM_FOR_ADDED_FIELDS);
    let mut seen = FramingFields::default();
    for (name, range) in fields {
        let value = HeaderValue::from_maybe_shared(head.slice(range))
            .map_err(|_| HeadError::Malformed("a header field value holds control bytes"))?;
        note_framing_field(&name, &value, &mut seen)?;
        headers.append(name, value);
    }
    Ok((headers, seen))
}

fn note_framing_field(
    name: &HeaderName,
    value: &HeaderValue,
    seen: &mut FramingFields,
) -> Result<(), HeadError> {
    if name == header::CONTENT_LENGTH {
        // A list of equal values (`5, 5`) is one length; anything else is refused.
        for item in value.as_bytes().split(|&b| b == b',') {
            let length = content_length(item)?;
            if seen.content_length.is_some_and(|known| known != length) {
                return Err(HeadError::Malformed("conflicting Content-Length values"));
            }
            seen.content_length = Some(length);
        }
    } else if name == header::TRANSFER_ENCODING {
        for coding in value.as_bytes().split(|&b| b == b',') {
            let coding = coding.trim_ascii();
            if coding.is_empty() {
                continue;
            }
            let chunked = coding.eq_ignore_ascii_case(b"chunked");
            seen.transfer_encoding = Some(match (seen.transfer_encoding, chunked) {
                (None, true) => Codings::Chunked,
                (Some(Codings::Chunked | Codings::ChunkedAfterOthers), _) => {
                    // Anything after `chunked`, `chunked` twice included, leaves it not last.
                    Codings::NotChunkedLast
                }
                (Some(Codings::NotChunkedLast), true) => Codings::ChunkedAfterOthers,
                (Some(Codings::NotChunkedLast) | None, false) => Codings::NotChunkedLast,
            });
        }
    } else if name == header::HOST {
        seen.hosts += 1;
    } else if name == header::CONNECTION {
        for option in value.as_bytes().split(|&b| b == b',') {
            let option = option.trim_ascii();
            seen.close |= option.eq_ignore_ascii_case(b"close");
            seen.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
        }
    } else if name == header::EXPECT {
        seen.expects_continue |= value.as_bytes().eq_ignore_ascii_case(b"100-continue");
    }
    Ok(())
}

/// A Content-Length value: decimal digits only, no sign, no overflow.
fn content_length(text: &[u8]) -> Result<u64, HeadError> {
    let digits = text.trim_ascii();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::Malformed(
            "Content-Length is not a decimal number",
        ));
    }
    Ok(digits
        .iter()
        .fold(0, |length, digit| length * 10 + u64::from(digit - b'0')))
}

/// Why a body could not be read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BodyError {
    /// Chunked syntax outside the grammar.
    #[error("the chunked body is malformed: {0}")]
    Malformed(&'static str),
    /// The peer closed the connection before the body's end.
    #[error("the connection closed before the end of the body")]
    Truncated,
}

/// One step of reading a body from buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    Data(Bytes),
    /// The buffer holds no more of the body; read more and try again.
    NeedMore,
    /// The body is complete.
    End,
}

/// Reads a body, delimited by its [`Framing`], out of a connection's read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoder {
    state: DecoderState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DecoderState {
    Length(u64),
    UntilClose,
    /// Reading a chunk-size line: the size so far and how many hex digits it had.
    ChunkSize {
        size: u64,
        digits: u8,
    },
    /// Skipping a chunk extension, up to the CR that ends the size line.
    ChunkExtension {
        size: u64,
        seen: usize,
    },
    /// The CR of a size line was read; its LF must follow.
    ChunkSizeLf {
        size: u64,
    },
    ChunkData(u64),
    ChunkDataCr,
    ChunkDataLf,
    /// After the last chunk: trailer fields (discarded), then an empty line.
    Trailers {
        seen: usize,
        line_empty: bool,
    },
    TrailersLf {
        seen: usize,
        line_empty: bool,
    },
    Done,
}

impl Decoder {
    pub(crate) fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => DecoderState::Done,
            Framing::Length(length) => DecoderState::Length(length),
            Framing::Chunked => DecoderState::ChunkSize { size: 0, digits: 0 },
            Framing::UntilClose => DecoderState::UntilClose,
        };
        Self { state }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == DecoderState::Done
    }

    /// Bytes still to come when the body has a known length.
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self.state {
            DecoderState::Length(length) => Some(length),
            DecoderState::Done => Some(0),
            _ => None,
        }
    }

    /// Takes the next piece of the body out of `buf`, leaving whatever follows the body.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, BodyError> {
        loop {
            if buf.is_empty() && self.state != DecoderState::Done {
                return Ok(Decoded::NeedMore);
            }
            match self.state {
                DecoderState::Done => return Ok(Decoded::End),
                DecoderState::Length(length) => {
                    let (data, next) = take(buf, length, DecoderState::Length, DecoderState::Done);
                    self.state = next;
                    return Ok(Decoded::Data(data));
                }
                DecoderState::UntilClose => return Ok(Decoded::Data(buf.split().freeze())),
                DecoderState::ChunkData(size) => {
                    let (data, next) = take(
                        buf,
                        size,
                        DecoderState::ChunkData,
                        DecoderState::ChunkDataCr,
                    );
                    self.state = next;
                    return Ok(Decoded::Data(data));
                }
                _ => {
                    let byte = buf[0];
                    buf.advance(1);
                    self.state = self.next_state(byte)?;
                }
            }
        }
    }

    /// Moves through the chunked syntax one byte at a time (sizes, CRLFs, trailers).
    fn next_state(&self, byte: u8) -> Result<DecoderState, BodyError> {
        use DecoderState::{
            ChunkDataCr, ChunkDataLf, ChunkExtension, ChunkSize, ChunkSizeLf, Trailers, TrailersLf,
        };
        let malformed = |what| Err(BodyError::Malformed(what));
        Ok(match (&self.state, byte) {
            (ChunkSize { size, digits }, _) if byte.is_ascii_hexdigit() => {
                if *digits >= 15 {
                    return malformed("a chunk size is too large");
                }
                let digit = u64::from((byte as char).to_digit(16).unwrap_or(0));
                ChunkSize {
                    size: size << 4 | digit,
                    digits: digits + 1,
                }
            }
            (ChunkSize { digits: 0, .. }, _) => return malformed("a chunk size is missing"),
            (ChunkSize { size, .. }, b';' | b' ' | b'\t') => ChunkExtension {
                size: *size,
                seen: 0,
            },
            (ChunkSize { size, .. } | ChunkExtension { size, .. }, b'\r') => {
                ChunkSizeLf { size: *size }
            }
            (ChunkSize { .. }, _) => return malformed("a chunk size is not hexadecimal"),
            (ChunkExtension { seen, .. }, _) if *seen >= MAX_CHUNK_EXTENSION => {
                return malformed("a chunk extension is too long");
            }
            (ChunkExtension { size, seen }, _) if byte == b'\t' || (b' '..0x7f).contains(&byte) => {
                ChunkExtension {
                    size: *size,
                    seen: seen + 1,
                }
            }
            (ChunkExtension { .. }, _) => {
                return malformed("a chunk extension holds control bytes");
            }
            (ChunkSizeLf { size: 0 }, b'\n') => Trailers {
                seen: 0,
                line_empty: true,
            },
            (ChunkSizeLf { size }, b'\n') => DecoderState::ChunkData(*size),
            (ChunkSizeLf { .. }, _) => return malformed("a chunk size line does not end in CRLF"),
            (ChunkDataCr, b'\r') => ChunkDataLf,
            (ChunkDataLf, b'\n') => ChunkSize { size: 0, digits: 0 },
            (ChunkDataCr | ChunkDataLf, _) => return malformed("a chunk does not end in CRLF"),
            (Trailers { seen, .. }, _) if *seen >= MAX_TRAILERS => {
                return malformed("the trailer section is too long");
            }
            (Trailers { seen, line_empty }, b'\r') => TrailersLf {
                seen: seen + 1,
                line_empty: *line_empty,
            },
            (Trailers { seen, .. }, _) if byte == b'\t' || (b' '..0x7f).contains(&byte) => {
                Trailers {
                    seen: seen + 1,
                    line_empty: false,
                }
            }
            (Trailers { .. }, _) => return malformed("a trailer field holds control bytes"),
            (
                TrailersLf {
                    line_empty: true, ..
                },
                b'\n',
            ) => DecoderState::Done,
            (TrailersLf { seen, .. }, b'\n') => Trailers {
                seen: seen + 1,
                line_empty: true,
            },
            (TrailersLf { .. }, _) => return malformed("a trailer line does not end in CRLF"),
            (
                DecoderState::Length(_)
                | DecoderState::UntilClose
                | DecoderState::ChunkData(_)
                | DecoderState::Done,
                _,
            ) => self.state.clone(),
        })
    }

    /// What the end of the connection means for the body: its end, or a truncation.
    pub(crate) fn at_eof(&mut self) -> Result<Decoded, BodyError> {
        match self.state {
            DecoderState::UntilClose | DecoderState::Done => {
                self.state = DecoderState::Done;
                Ok(Decoded::End)
            }
            _ => Err(BodyError::Truncated),
        }
    }
}

/// Up to `left` bytes of data from the front of `buf`, and the state after them: `more` with
/// what is still to come, or `after` once all of it has been taken.
fn take(
    buf: &mut BytesMut,
    left: u64,
    more: fn(u64) -> DecoderState,
    after: DecoderState,
) -> (Bytes, DecoderState) {
    let len = usize::try_from(left).map_or(buf.len(), |left| left.min(buf.len()));
    let data = buf.split_to(len).freeze();
    let next = match left - data.len() as u64 {
        0 => after,
        still => more(still),
    };
    (data, next)
}

/// A body that gave other than the number of bytes its head announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LengthMismatch {
    #[error("the body is longer than its announced length")]
    Longer,
    #[error("the body is shorter than its announced length")]
    Shorter,
}

/// Writes a body's data in its [`Framing`], and holds a length-framed body to its length.
#[derive(Debug)]
pub(crate) struct Encoder {
    framing: Framing,
    /// Data bytes taken so far.
    sent: u64,
}

impl Encoder {
    pub(crate) fn new(framing: Framing) -> Self {
        Self { framing, sent: 0 }
    }

    /// Appends one piece of data, framed.
    pub(crate) fn encode(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), LengthMismatch> {
        self.start_data(data.len(), out)?;
        out.extend_from_slice(data);
        self.end_data(data.len(), out);
        Ok(())
    }

    /// Counts `len` bytes of data against the length and appends what goes before them (a
    /// chunk's size line), for a caller that writes the data itself; [`Self::end_data`]
    /// follows it.
    pub(crate) fn start_data(
        &mut self,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), LengthMismatch> {
        self.sent += len as u64;
        match self.framing {
            Framing::Length(length) if self.sent > length => Err(LengthMismatch::Longer),
            // An empty chunk would read as the last one: empty data is no chunk at all.
            Framing::Chunked if len > 0 => {
                use std::io::Write;
                // Writing into a Vec cannot fail.
                let _ = write!(out, "{len:x}\r\n");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Appends what follows `len` bytes of data (a chunk's CRLF).
    pub(crate) fn end_data(&self, len: usize, out: &mut Vec<u8>) {
        if self.framing == Framing::Chunked && len > 0 {
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Appends the end of the body (the last chunk, with no trailers) once its length is
    /// reached.
    pub(crate) fn finish(&self, out: &mut Vec<u8>) -> Result<(), LengthMismatch> {
        match self.framing {
            Framing::Length(length) if self.sent < length => Err(LengthMismatch::Shorter),
            Framing::Chunked => {
                out.extend_from_slice(b"0\r\n\r\n");
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Appends `name: value\r\n` for every field.
pub(crate) fn encode_fields<'a>(
    fields: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>,
    out: &mut Vec<u8>,
) {
    for (name, value) in fields {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(text: &str) -> Result<Option<RequestHead>, HeadError> {
        parse_request(&mut BytesMut::from(text))
    }

    fn framing_of(text: &str) -> Result<Framing, HeadError> {
        request(text).map(|head| head.map_or(Framing::UntilClose, |head| head.framing))
    }

    /// Decodes `wire` fed in pieces of `piece` bytes; the body, and what is left after it.
    fn decode_in_pieces(
        framing: Framing,
        wire: &[u8],
        piece: usize,
    ) -> Result<(Vec<u8>, Vec<u8>), BodyError> {
        let mut decoder = Decoder::new(framing);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut pieces = wire.chunks(piece.max(1));
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(data) => body.extend_from_slice(&data),
                Decoded::End => return Ok((body, buf.to_vec())),
                Decoded::NeedMore => match pieces.next() {
                    Some(next) => buf.extend_from_slice(next),
                    None => match decoder.at_eof()? {
                        Decoded::End => return Ok((body, Vec::new())),
                        _ => unreachable!("at_eof only ends or fails"),
                    },
                },
            }
        }
    }

    #[test]
    fn a_request_head_is_parsed_with_its_framing() {
        let head = request("POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(head.parts.method, Method::POST);
        assert_eq!(head.parts.uri, "/a?b=1");
        assert_eq!(head.parts.headers["host"], "x");
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive);
        assert_eq!(
            request("GET / HTTP/1.1\r\nHost: x\r\n")
                .unwrap()
                .map(|_| ()),
            None
        );
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        let refused = [
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
        ];
        for text in refused {
            assert!(
                matches!(framing_of(text), Err(HeadError::Malformed(_))),
                "{text:?} was accepted"
            );
        }
        assert_eq!(
            framing_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Err(HeadError::UnsupportedCoding)
        );
        assert_eq!(
            framing_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7, 7\r\n\r\n"),
            Ok(Framing::Length(7))
        );
        assert_eq!(
            framing_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"),
            Ok(Framing::Chunked)
        );
    }

    #[test]
    fn oversized_heads_and_other_versions_are_refused() {
        let long = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n",
            "a".repeat(MAX_HEAD)
        );
        assert_eq!(request(&long).map(|_| ()), Err(HeadError::TooLarge));
        assert_eq!(
            request("GET / HTTP/2.0\r\nHost: x\r\n\r\n").map(|_| ()),
            Err(HeadError::UnsupportedVersion)
        );
    }

    #[test]
    fn response_framing_follows_the_method_and_status() {
        let parse = |text: &str, method: &Method| {
            parse_response(&mut BytesMut::from(text), method)
                .unwrap()
                .map(|head| (head.parts.status.as_u16(), head.framing, head.reusable))
        };
        let get = &Method::GET;
        assert_eq!(
            parse(
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
                get
            ),
            Some((200, Framing::Length(3), true))
        );
        assert_eq!(
            parse(
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
                &Method::HEAD
            ),
            Some((200, Framing::Empty, true))
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\n\r\n", get),
            Some((200, Framing::UntilClose, false))
        );
        assert_eq!(
            parse(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
                get
            ),
            Some((200, Framing::Length(1), false))
        );
        assert_eq!(
            parse(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
                get
            ),
            Some((200, Framing::Chunked, false))
        );
        assert_eq!(parse("HTTP/1.1 204 No Content\r\n", get), None);
    }

    #[test]
    fn malformed_chunks_are_refused() {
        let refused: [&[u8]; 7] = [
            b"zz\r\n",
            b"\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXY0\r\n\r\n",
            b"1000000000000000\r\n",
            b"5;a\nb\r\nhello\r\n0\r\n\r\n",
            b"0\r\nbad\x01trailer\r\n\r\n",
        ];
        for wire in refused {
            assert!(
                matches!(
                    decode_in_pieces(Framing::Chunked, wire, 64),
                    Err(BodyError::Malformed(_))
                ),
                "{wire:?} was accepted"
            );
        }
        assert_eq!(
            decode_in_pieces(Framing::Chunked, b"5\r\nhel", 64),
            Err(BodyError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn chunked_bodies_decode_whole_however_they_arrive(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..8),
            extension in any::<bool>(),
            trailer in any::<bool>(),
            piece in 1usize..40,
        ) {
            let mut wire = Vec::new();
            for chunk in &chunks {
                wire.extend_from_slice(format!("{:X}", chunk.len()).as_bytes());
                if extension {
                    wire.extend_from_slice(b" ; name=\"va lue\"");
                }
                wire.extend_from_slice(b"\r\n");
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n");
            if trailer {
                wire.extend_from_slice(b"X-Sum: 1\r\n");
            }
            wire.extend_from_slice(b"\r\nGET /next");

            let (body, rest) = decode_in_pieces(Framing::Chunked, &wire, piece).unwrap();
            prop_assert_eq!(body, chunks.concat());
            // Whatever follows the body is left for the next message.
            prop_assert!(b"GET /next".starts_with(&rest));
        }

        #[test]
        fn length_bodies_stop_at_their_length(
            body in proptest::collection::vec(any::<u8>(), 1..500),
            piece in 1usize..64,
        ) {
            let mut wire = body.clone();
            wire.extend_from_slice(b"NEXT");
            let length = Framing::Length(body.len() as u64);
            let (decoded, rest) = decode_in_pieces(length, &wire, piece).unwrap();
            prop_assert_eq!(decoded, body);
            prop_assert!(b"NEXT".starts_with(&rest));
        }

        #[test]
        fn any_bytes_as_a_request_head_never_panic(wire in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_request(&mut BytesMut::from(&wire[..]));
            let mut buf = BytesMut::from(&wire[..]);
            let _ = decode_in_pieces(Framing::Chunked, &wire, 7);
            let _ = parse_response(&mut buf, &Method::GET);
        }
    }
}
