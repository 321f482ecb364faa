-- Demo schema with fake PII (all values invented; card numbers are standard test numbers).
CREATE TABLE customers (
    id      serial PRIMARY KEY,
    name    text NOT NULL,
    email   text NOT NULL,
    phone   text,
    ssn     text
);
CREATE TABLE orders (
    id          serial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers(id),
    total_cents int NOT NULL,
    placed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE payments (
    id          serial PRIMARY KEY,
    order_id    int NOT NULL REFERENCES orders(id),
    card_number text NOT NULL,
    amount_cents int NOT NULL
);
INSERT INTO customers (name, email, phone, ssn) VALUES
    ('Ada Lovelace',   'ada@example.com',     '+1-202-555-0101', '123-45-6789'),
    ('Alan Turing',    'alan@example.org',    '+1-202-555-0102', '234-56-7890'),
    ('Grace Hopper',   'grace@example.net',   '+1-202-555-0103', '345-67-8901'),
    ('Edsger Dijkstra','edsger@example.com',  '+1-202-555-0104', '456-78-9012'),
    ('Barbara Liskov', 'barbara@example.org', '+1-202-555-0105', '567-89-0123');
INSERT INTO orders (customer_id, total_cents)
    SELECT 1 + (g % 5), 1000 + g * 37 FROM generate_series(1, 20) g;
INSERT INTO payments (order_id, card_number, amount_cents)
    SELECT id, (ARRAY['4111111111111111','5555555555554444','378282246310005',
                      '6011111111111117','4012888888881881'])[1 + (id % 5)], total_cents
    FROM orders;
