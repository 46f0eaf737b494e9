"""The demo shop: a small Flask shop hosting loyalty_plugin exactly as SPEC §3 shows.

It is a host like any other: its own Flask-SQLAlchemy ``db``, Flask-Login accounts with
hashed passwords, Flask-WTF CSRF on every form, a session cart and its own orders. It hands
the plugin its ``db``, so the plugin never commits: a checkout writes the shop's order, the
points and the coupon use, then commits once.

Set-up: ``flask --app wsgi loyalty db upgrade`` (the plugin's tables), ``flask --app wsgi demo
init-db`` (the shop's tables, catalog and admin), ``flask --app wsgi loyalty seed-demo``
(customers and a year of orders). Environment: ``DEMO_DATABASE_URL`` (default: a SQLite file
in the instance folder), ``DEMO_SECRET_KEY`` (default: a random key kept in the instance
folder), ``DEMO_ADMIN_EMAIL`` / ``DEMO_ADMIN_PASSWORD`` (defaults below: a demo, not a shop).
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask.cli import AppGroup
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect, FlaskForm
from flask_wtf.csrf import CSRFError
from sqlalchemy import BigInteger, ForeignKey, String, event, func, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator
from werkzeug.exceptions import HTTPException
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import (
    BooleanField,
    DecimalField,
    EmailField,
    IntegerField,
    PasswordField,
    RadioField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, ValidationError

from loyalty_plugin import Coupon, Discount, Loyalty, LoyaltyError
from loyalty_plugin.demo import demo_catalog
from loyalty_plugin.money import utcnow

DEFAULT_ADMIN_EMAIL = "admin@example.com"
#: The documented default of a demo; a real deployment sets DEMO_ADMIN_PASSWORD.
DEFAULT_ADMIN_PASSWORD = "admin-demo-password"  # noqa: S105  # nosec B105
CENT = Decimal("0.01")
SHIPPING = Decimal("4.95")
FREE_SHIPPING_FROM = Decimal("50.00")
PAGE_SIZE = 24


class Cents(TypeDecorator[Decimal]):
    """Money as an exact integer of cents: SQLite has no exact decimal type."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else int(Decimal(value).quantize(CENT) * 100)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(int(value)).scaleb(-2)


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
loyalty = Loyalty()
shop = Blueprint("shop", __name__)
demo_cli = AppGroup("demo", help="The demo shop's own tables, catalog and admin.")


# Tables ------------------------------------------------------------------------------------


class User(UserMixin, db.Model):
    __tablename__ = "shop_users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class Product(db.Model):
    __tablename__ = "shop_products"

    sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(100), index=True)
    price: Mapped[Decimal] = mapped_column(Cents)
    consumable: Mapped[bool]
    in_stock: Mapped[bool] = mapped_column(default=True)


class ShopOrder(db.Model):
    __tablename__ = "shop_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("shop_users.id"), index=True)
    placed_at: Mapped[datetime]
    goods: Mapped[Decimal] = mapped_column(Cents)
    member_discount: Mapped[Decimal] = mapped_column(Cents)
    coupon_code: Mapped[str | None] = mapped_column(String(40))
    coupon_discount: Mapped[Decimal] = mapped_column(Cents)
    shipping: Mapped[Decimal] = mapped_column(Cents)
    total: Mapped[Decimal] = mapped_column(Cents)
    refunded: Mapped[Decimal] = mapped_column(Cents, default=Decimal(0))
    points: Mapped[int] = mapped_column(default=0)
    lines: Mapped[list[ShopOrderLine]] = relationship(order_by="ShopOrderLine.id")
    user: Mapped[User] = relationship()

    @property
    def loyalty_id(self) -> str:
        """The order's id in the loyalty program; seeded history uses ``seed-…`` ids."""
        return f"order-{self.id}"

    @property
    def refundable(self) -> Decimal:
        return self.total - self.refunded


class ShopOrderLine(db.Model):
    __tablename__ = "shop_order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"))
    sku: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(100))
    qty: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Cents)


class Refund(db.Model):
    __tablename__ = "shop_refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"))
    amount: Mapped[Decimal] = mapped_column(Cents)
    created_at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(320))


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    return db.session.get(User, user_id)


# Forms -------------------------------------------------------------------------------------


def _looks_like_email(_form: FlaskForm, field: Any) -> None:
    local, _, domain = (field.data or "").partition("@")
    if not local or "." not in domain or " " in field.data:
        raise ValidationError("Please enter an email address like name@example.com.")


class SignupForm(FlaskForm):
    name = StringField("Your name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=320), _looks_like_email])
    password = PasswordField("Password (at least 8 characters)", validators=[DataRequired(), Length(min=8, max=200)])
    confirm = PasswordField("Repeat the password", validators=[EqualTo("password", "The passwords do not match.")])
    join = BooleanField("Join the loyalty program and earn points on every order", default=True)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class QuantityForm(FlaskForm):
    qty = IntegerField("Quantity", default=1, validators=[NumberRange(0, 99, "Choose a quantity from 0 to 99.")])


class CheckoutForm(FlaskForm):
    #: Choices are the member's coupons; a stale choice is left for the plugin to refuse with its reason.
    coupon = RadioField("Loyalty coupon", default="", validate_choice=False)
    preview = SubmitField("Update total")
    place = SubmitField("Place order")


class RefundForm(FlaskForm):
    amount = DecimalField("Refund amount", places=2, validators=[NumberRange(min=Decimal("0.01"))])


class ActionForm(FlaskForm):
    """A form with nothing but its CSRF token, for buttons that change something."""


# Hooks the plugin calls --------------------------------------------------------------------


def _is_admin(user: Any) -> bool:
    return bool(getattr(user, "is_admin", False))


def _user_email(user: Any) -> str | None:
    return getattr(user, "email", None)


def _item_info(skus: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The shop's own product data for the plugin's widgets."""
    products = db.session.scalars(select(Product).where(Product.sku.in_(list(skus))))
    image = url_for("static", filename="demo/item.svg")
    return {
        p.sku: {
            "name": p.name,
            "url": url_for("shop.item", sku=p.sku),
            "image": image,
            "price": p.price,
            "in_stock": p.in_stock,
        }
        for p in products
    }


def _create_users(people: list[dict[str, str]]) -> None:
    """Accounts for ``flask loyalty seed-demo``'s customers.

    They share one public demo password, so it is hashed once per distinct password:
    hashing 2,000 times with scrypt would take minutes.
    """
    known = set(db.session.scalars(select(User.id)))
    new = [p for p in people if p["user_id"] not in known]
    hashes = {password: generate_password_hash(password) for password in {p["password"] for p in new}}
    if new:
        db.session.execute(
            insert(User),
            [
                {
                    "id": p["user_id"],
                    "email": p["email"],
                    "name": p["name"],
                    "is_admin": False,
                    "created_at": utcnow(),
                    "password_hash": hashes[p["password"]],
                }
                for p in new
            ],
        )
    db.session.commit()


# Pricing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    product: Product
    qty: int
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.qty


@dataclass(frozen=True)
class Quote:
    """What the customer pays: goods, less the tier discount and the coupon, plus shipping."""

    lines: list[Line]
    goods: Decimal
    member_discount: Decimal
    coupon: Discount | None
    shipping: Decimal

    @property
    def coupon_discount(self) -> Decimal:
        return self.coupon.amount if self.coupon else Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.goods - self.member_discount - self.coupon_discount + self.shipping


def _cart() -> dict[str, int]:
    return dict(session.get("cart", {}))


def _cart_lines(cart: Mapping[str, int]) -> list[Line]:
    products = {p.sku: p for p in db.session.scalars(select(Product).where(Product.sku.in_(list(cart))))}
    return [Line(products[sku], qty, products[sku].price) for sku, qty in cart.items() if sku in products]


def _tier_discount(user_id: str) -> Decimal:
    member = loyalty.get_member(user_id)
    return loyalty.state().settings.tier(member.tier_code).discount_percent if member else Decimal(0)


def quote(user_id: str | None, cart: Mapping[str, int], coupon_code: str | None) -> Quote:
    """Price the cart; a coupon the plugin refuses raises its ``LoyaltyError``."""
    lines = _cart_lines(cart)
    goods = sum((line.amount for line in lines), Decimal(0))
    percent = _tier_discount(user_id) if user_id else Decimal(0)
    member_discount = (goods * percent / 100).quantize(CENT, rounding=ROUND_DOWN)
    coupon = loyalty.check_coupon(coupon_code, user_id, goods - member_discount) if coupon_code else None
    if coupon is not None and coupon.free_item_sku:
        gift = db.session.get(Product, coupon.free_item_sku)
        if gift is not None:
            lines.append(Line(gift, 1, Decimal(0)))
    free_shipping = goods - member_discount >= FREE_SHIPPING_FROM or (coupon is not None and coupon.free_shipping)
    shipping = Decimal(0) if free_shipping or not lines else SHIPPING
    return Quote(lines, goods, member_discount, coupon, shipping)


def describe_coupon(coupon: Coupon) -> str:
    if coupon.kind == "fixed_amount":
        text = f"${coupon.amount} off"
    elif coupon.kind == "percent":
        text = f"{coupon.percent.normalize()}% off" + (f", up to ${coupon.max_discount}" if coupon.max_discount else "")
    elif coupon.kind == "free_shipping":
        text = "Free shipping"
    else:
        gift = db.session.get(Product, coupon.sku)
        text = f"Free {gift.name if gift else coupon.sku}"
    if coupon.min_order_total:
        text += f" on orders of ${coupon.min_order_total} or more"
    return f"{text} (valid until {coupon.valid_until:%d %b %Y})"


def grouped(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


# Access ------------------------------------------------------------------------------------


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Anonymous visitors go to the login page; logged-in customers get 403."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not _is_admin(current_user):
            abort(403)
        return view(*args, **kwargs)

    return guarded


def _safe_next(default: str) -> str:
    """Only a path on this site: ``next`` must not send a fresh login to another host."""
    target = request.args.get("next", "")
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and "\\" not in target and not parts.netloc:
        return target
    return default


# Pages -------------------------------------------------------------------------------------


@shop.app_context_processor
def _layout() -> dict[str, Any]:
    return {
        "cart_count": sum(_cart().values()),
        "grouped": grouped,
        "is_admin": current_user.is_authenticated and _is_admin(current_user),
    }


@shop.app_template_filter("money")
def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


@shop.get("/")
def catalog() -> str:
    category = request.args.get("category") or None
    page = max(request.args.get("page", 1, type=int), 1)
    query = select(Product).order_by(Product.category, Product.sku)
    if category:
        query = query.where(Product.category == category)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    products = db.session.scalars(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    categories = db.session.scalars(select(Product.category).distinct().order_by(Product.category)).all()
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return render_template(
        "demo/catalog.html", products=products, categories=categories, category=category, page=page, pages=pages
    )


@shop.get("/items/<sku>")
def item(sku: str) -> str:
    product = db.session.get(Product, sku) or abort(404)
    return render_template("demo/item.html", product=product, form=QuantityForm())


@shop.post("/cart/add/<sku>")
def add_to_cart(sku: str) -> Any:
    product = db.session.get(Product, sku) or abort(404)
    form = QuantityForm()
    if form.validate_on_submit() and form.qty.data:
        cart = _cart()
        cart[sku] = min(cart.get(sku, 0) + form.qty.data, 99)
        session["cart"] = cart
        flash(f"{product.name} is in your cart.", "success")
    else:
        flash("Choose a quantity from 1 to 99.", "error")
    return redirect(request.referrer if _same_site(request.referrer) else url_for("shop.cart"))


def _same_site(url: str | None) -> bool:
    return bool(url) and urlsplit(url).netloc == request.host


@shop.get("/cart")
def cart() -> str:
    return render_template("demo/cart.html", quote=quote(None, _cart(), None))


@shop.post("/cart/<sku>")
def update_cart(sku: str) -> Any:
    if db.session.get(Product, sku) is None:
        abort(404)
    form = QuantityForm()
    if form.validate_on_submit():
        cart = _cart()
        if form.qty.data:
            cart[sku] = form.qty.data
        else:
            cart.pop(sku, None)
        session["cart"] = cart
    else:
        flash("Choose a quantity from 0 to 99.", "error")
    return redirect(url_for("shop.cart"))


@shop.route("/checkout", methods=["GET", "POST"])
@login_required
def checkout() -> Any:
    uid = current_user.get_id()
    cart = _cart()
    if not cart:
        flash("Your cart is empty.", "error")
        return redirect(url_for("shop.catalog"))
    coupons = loyalty.coupons(uid)
    form = CheckoutForm()
    form.coupon.choices = [("", "No coupon")] + [
        (c.code, f"{describe_coupon(c)}, code {grouped(c.code)}") for c in coupons
    ]
    submitted = form.validate_on_submit()
    code = (form.coupon.data or None) if submitted else None
    try:
        priced = quote(uid, cart, code)
    except LoyaltyError as refused:
        flash(refused.message, "error")
        form.coupon.data = ""
        return render_template("demo/checkout.html", form=form, quote=quote(uid, cart, None))
    if submitted and form.place.data:
        return _place_order(uid, priced, code)
    return render_template("demo/checkout.html", form=form, quote=priced)


def _place_order(uid: str, priced: Quote, code: str | None) -> Any:
    """The shop's order, its points and the coupon's use: one transaction, one commit."""
    order = ShopOrder(
        user_id=uid,
        placed_at=utcnow(),
        goods=priced.goods,
        member_discount=priced.member_discount,
        coupon_code=code,
        coupon_discount=priced.coupon_discount,
        shipping=priced.shipping,
        total=priced.total,
    )
    order.lines = [
        ShopOrderLine(
            sku=line.product.sku,
            name=line.product.name,
            category=line.product.category,
            qty=line.qty,
            unit_price=line.unit_price,
        )
        for line in priced.lines
    ]
    db.session.add(order)
    try:
        db.session.flush()
        receipt = loyalty.record_order(
            order.loyalty_id,
            uid,
            order.total,
            placed_at=order.placed_at,
            shipping=order.shipping,
            lines=[
                {"sku": x.sku, "qty": x.qty, "unit_price": x.unit_price, "category": x.category} for x in order.lines
            ],
        )
        if code:
            loyalty.use_coupon(code, uid, order.loyalty_id)
        order.points = receipt.points_awarded
        db.session.commit()
    except LoyaltyError as refused:
        db.session.rollback()
        flash(refused.message, "error")
        return redirect(url_for("shop.checkout"))
    session.pop("cart", None)
    message = f"Thank you! Order {order.id} is placed."
    if receipt.points_awarded:
        days = loyalty.state().settings.pending_days
        message += f" You earned {receipt.points_awarded:,} points, yours to spend in {days} days."
    flash(message, "success")
    return redirect(url_for("shop.orders"))


@shop.get("/orders")
@login_required
def orders() -> str:
    mine = db.session.scalars(
        select(ShopOrder).where(ShopOrder.user_id == current_user.get_id()).order_by(ShopOrder.id.desc())
    ).all()
    return render_template("demo/orders.html", orders=mine)


@shop.route("/signup", methods=["GET", "POST"])
def signup() -> Any:
    form = SignupForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        if db.session.scalar(select(User.id).where(User.email == email)):
            form.email.errors.append("There is already an account with this email: please log in.")
        else:
            return _open_account(form, email)
    return render_template("demo/signup.html", form=form, signup_points=loyalty.state().settings.signup_points)


def _open_account(form: SignupForm, email: str) -> Any:
    user = User(
        id=uuid.uuid4().hex,
        email=email,
        name=form.name.data.strip(),
        created_at=utcnow(),
        password_hash=generate_password_hash(form.password.data),
        is_admin=False,
    )
    db.session.add(user)
    try:
        db.session.flush()
        if form.join.data:
            loyalty.enroll(user.id, email=email, name=user.name)
        db.session.commit()
    except LoyaltyError as refused:
        db.session.rollback()
        flash(refused.message, "error")
        return redirect(url_for("shop.signup"))
    login_user(user)
    joined = " You are a member of our loyalty program." if form.join.data else ""
    flash(f"Welcome, {user.name}!{joined}", "success")
    return redirect(_safe_next(url_for("shop.catalog")))


#: Checked when the email is unknown, so a wrong email takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))


@shop.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():
        user = db.session.scalar(select(User).where(User.email == form.email.data.strip().lower()))
        valid = check_password_hash(user.password_hash if user else _DUMMY_HASH, form.password.data)
        if user is not None and valid:
            login_user(user)
            return redirect(_safe_next(url_for("shop.catalog")))
        flash("The email or the password is wrong.", "error")
    return render_template("demo/login.html", form=form)


@shop.post("/logout")
def logout() -> Any:
    if ActionForm().validate_on_submit():
        logout_user()
        session.pop("cart", None)
    return redirect(url_for("shop.catalog"))


@shop.get("/admin/orders")
@admin_required
def admin_orders() -> str:
    latest = db.session.scalars(select(ShopOrder).order_by(ShopOrder.id.desc()).limit(200)).all()
    return render_template("demo/admin_orders.html", orders=latest)


@shop.post("/admin/orders/<int:order_id>/refund")
@admin_required
def refund(order_id: int) -> Any:
    order = db.session.get(ShopOrder, order_id) or abort(404)
    form = RefundForm()
    if not form.validate_on_submit():
        flash("Enter an amount of at least 0.01 to refund.", "error")
        return redirect(url_for("shop.admin_orders"))
    amount = form.amount.data.quantize(CENT)
    if amount > order.refundable:
        flash(f"Only {_money(order.refundable)} is left to refund on order {order.id}.", "error")
        return redirect(url_for("shop.admin_orders"))
    record = Refund(order_id=order.id, amount=amount, created_at=utcnow(), by=current_user.email)
    db.session.add(record)
    try:
        db.session.flush()
        receipt = loyalty.record_refund(f"refund-{record.id}", order.loyalty_id, amount)
        order.refunded += amount
        db.session.commit()
    except LoyaltyError as refused:
        db.session.rollback()
        flash(refused.message, "error")
        return redirect(url_for("shop.admin_orders"))
    flash(
        f"Refunded {_money(amount)} on order {order.id}; {receipt.points_clawed_back:,} points taken back.", "success"
    )
    return redirect(url_for("shop.admin_orders"))


def _error_page(error: HTTPException) -> tuple[str, int]:
    message = "The form had expired. Please try again." if isinstance(error, CSRFError) else error.description
    return render_template("demo/error.html", error=error, message=message), error.code or 500


# Command line ------------------------------------------------------------------------------


@demo_cli.command("init-db")
def init_db() -> None:
    """Create the shop's tables, load its catalog and its admin; safe to run again.

    The loyalty_ tables are not the shop's: ``flask loyalty db upgrade`` creates them.
    """
    db.create_all()
    for entry in demo_catalog():
        db.session.merge(
            Product(
                sku=entry.sku,
                name=entry.name,
                category=entry.category,
                price=entry.price,
                consumable=entry.consumable,
                in_stock=True,
            )
        )
    email = current_app.config["DEMO_ADMIN_EMAIL"]
    if db.session.scalar(select(User.id).where(User.email == email)) is None:
        db.session.add(
            User(
                id="admin",
                email=email,
                name="Shop admin",
                is_admin=True,
                created_at=utcnow(),
                password_hash=generate_password_hash(current_app.config["DEMO_ADMIN_PASSWORD"]),
            )
        )
    db.session.commit()
    products = db.session.scalar(select(func.count()).select_from(Product))
    click.echo(f"shop tables ready: {products} products, admin {email}")


# The app -----------------------------------------------------------------------------------


def _database_url(app: Flask) -> str:
    """``DEMO_DATABASE_URL`` if set; plain ``postgresql://`` means psycopg 3, the driver we ship."""
    url = os.environ.get("DEMO_DATABASE_URL") or "sqlite:///" + os.path.join(app.instance_path, "demo.sqlite")
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _instance_secret(app: Flask) -> str:
    """A random key kept in the instance folder, so sessions survive a restart of the demo."""
    path = os.path.join(app.instance_path, "secret_key")
    if not os.path.exists(path):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secrets.token_hex(32))
    with open(path) as f:
        return f.read().strip()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets pages read while a checkout writes; NORMAL sync is safe with WAL and skips an fsync per commit."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=_database_url(app),
        LOYALTY_BASE_TEMPLATE="demo/base.html",
        DEMO_ADMIN_EMAIL=os.environ.get("DEMO_ADMIN_EMAIL", DEFAULT_ADMIN_EMAIL),
        DEMO_ADMIN_PASSWORD=os.environ.get("DEMO_ADMIN_PASSWORD", DEFAULT_ADMIN_PASSWORD),
    )
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ.get("DEMO_SECRET_KEY") or _instance_secret(app)
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)
    login_manager.init_app(app)
    login_manager.login_view = "shop.login"
    login_manager.login_message_category = "info"
    csrf.init_app(app)  # before the plugin, which exempts its signed webhooks from CSRF
    loyalty.init_app(
        app, db=db, is_admin=_is_admin, user_email=_user_email, item_info=_item_info, seed_users=_create_users
    )
    app.register_blueprint(shop)
    for code in (400, 403, 404):
        app.register_error_handler(code, _error_page)
    app.cli.add_command(demo_cli)
    return app


app = create_app()
